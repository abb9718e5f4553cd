-- v_event_classes: the 3W label dictionary (a dimension for reports): label, its event class
-- (transient labels 101..109 fold into 1..9), name, transient flag, and whether it is an event
-- (positive for the model metrics: label <> 0). Mirrors petrostream/schema.py EVENTS.
CREATE OR REPLACE VIEW v_event_classes AS
SELECT
  label,
  event_class,
  event_name,
  is_transient,
  label <> 0 AS is_event
FROM (
  VALUES
    (0, 0, 'Normal Operation', false),
    (1, 1, 'Abrupt Increase of BSW', false),
    (2, 2, 'Spurious Closure of DHSV', false),
    (3, 3, 'Severe Slugging', false),
    (4, 4, 'Flow Instability', false),
    (5, 5, 'Rapid Productivity Loss', false),
    (6, 6, 'Quick Restriction in PCK', false),
    (7, 7, 'Scaling in PCK', false),
    (8, 8, 'Hydrate in Production Line', false),
    (9, 9, 'Hydrate in Service Line', false),
    (101, 1, 'Abrupt Increase of BSW (transient)', true),
    (102, 2, 'Spurious Closure of DHSV (transient)', true),
    (105, 5, 'Rapid Productivity Loss (transient)', true),
    (106, 6, 'Quick Restriction in PCK (transient)', true),
    (107, 7, 'Scaling in PCK (transient)', true),
    (108, 8, 'Hydrate in Production Line (transient)', true),
    (109, 9, 'Hydrate in Service Line (transient)', true)
) AS t (label, event_class, event_name, is_transient)
