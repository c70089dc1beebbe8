-- Dashboard "Insight events": every Start and End, newest first, with the baseline and
-- insight averages (events per minute) and the top principal. The full CloudTrail
-- record, attributions included, is in raw_data.
--
-- Parameters to edit: add `WHERE eventday BETWEEN '20240301' AND '20240331'`; LIMIT.
SELECT
  time_dt AS time,
  CASE activity_id WHEN 1 THEN 'Start' WHEN 3 THEN 'End' ELSE 'Other' END AS state,
  finding_info.analytic.name AS insight_type,
  api.service.name AS event_source,
  api.operation AS event_name,
  accountid AS account,
  region,
  CAST(unmapped['insightDetails.insightContext.statistics.baseline.average'] AS DOUBLE) AS baseline_average,
  CAST(unmapped['insightDetails.insightContext.statistics.insight.average'] AS DOUBLE) AS insight_average,
  CAST(unmapped['insightDetails.insightContext.statistics.insightDuration'] AS BIGINT) AS duration_minutes,
  evidences[1]['actor']['user']['uid'] AS top_user,
  metadata.product.name AS producer,
  finding_info.uid AS insight_id
FROM cloud_trail_insights_detection_finding
ORDER BY time DESC, insight_id, state
LIMIT 500;
