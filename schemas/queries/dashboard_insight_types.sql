-- Dashboard "Insight types": how insights split between API call rate and API error
-- rate. One insight = its Start row (activity_id 1); delivered CloudTrail Insights and
-- trailhouse's own are both counted (split them on metadata.product.name).
--
-- Parameters to edit: add `AND eventday BETWEEN '20240301' AND '20240331'` (YYYYMMDD,
-- the insight's start day) or `AND accountid = '…'` to narrow.
SELECT
  finding_info.analytic.name AS insight_type,
  count(*) AS insights
FROM cloud_trail_insights_detection_finding
WHERE activity_id = 1
GROUP BY finding_info.analytic.name
ORDER BY insights DESC, insight_type;
