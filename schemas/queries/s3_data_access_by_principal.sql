-- S3 data access by principal: object-level S3 calls (CloudTrail data events,
-- eventCategory "Data") per principal and bucket: reads (Get*/Head*/List*),
-- deletes (Delete*), other writes, and failures. A role counts once for all its
-- sessions (named by its session issuer). Needs S3 data events enabled on the trail;
-- records older than eventVersion 1.07 have no eventCategory and are not counted.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND bucket = 'my-bucket'` in the outer WHERE to follow one bucket; LIMIT 50.
WITH s3 AS (
  SELECT
    CASE
      WHEN actor."user".type = 'AssumedRole' AND actor.session.issuer IS NOT NULL
        THEN actor.session.issuer
      ELSE coalesce(actor."user".uid, actor."user".uid_alt)
    END AS principal,
    regexp_match(api.request.data, '"bucketName":"([^"]*)"')[1] AS bucket,
    api.operation AS operation,
    status
  FROM api_activity
  WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
    AND api.service.name = 's3.amazonaws.com'
    AND metadata.product.feature.name = 'Data'
)
SELECT
  principal,
  bucket,
  count(*) AS calls,
  sum(CASE WHEN operation LIKE 'Get%' OR operation LIKE 'Head%' OR operation LIKE 'List%'
      THEN 1 ELSE 0 END) AS reads,
  sum(CASE WHEN operation LIKE 'Delete%' THEN 1 ELSE 0 END) AS deletes,
  sum(CASE WHEN operation LIKE 'Get%' OR operation LIKE 'Head%' OR operation LIKE 'List%'
        OR operation LIKE 'Delete%' THEN 0 ELSE 1 END) AS writes,
  sum(CASE WHEN status = 'Failure' THEN 1 ELSE 0 END) AS failures
FROM s3
GROUP BY principal, bucket
ORDER BY calls DESC, principal, bucket
LIMIT 50;
