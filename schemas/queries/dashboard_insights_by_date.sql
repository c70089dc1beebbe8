-- Dashboard "Insights by date": insights started per day, per insight type.
--
-- Parameters to edit: add `AND eventday BETWEEN '20240301' AND '20240331'`.
SELECT
  to_char(time_dt, '%Y-%m-%d') AS day,
  finding_info.analytic.name AS insight_type,
  count(*) AS insights
FROM cloud_trail_insights_detection_finding
WHERE activity_id = 1
GROUP BY to_char(time_dt, '%Y-%m-%d'), finding_info.analytic.name
ORDER BY day, insight_type;
