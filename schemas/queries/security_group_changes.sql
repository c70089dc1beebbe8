-- Security-group changes (CIS AWS Foundations 4.10): groups created or deleted,
-- ingress/egress rules authorized, revoked or modified. Newest first, with the
-- principal, the group (groupId from the request, else from the response for
-- CreateSecurityGroup, else the groupName) and the source address. Failed attempts
-- are kept (status, error).
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND region = 'us-east-1'` / `AND accountid = '…'` to narrow.
SELECT
  time_dt,
  accountid,
  region,
  actor."user".uid AS principal,
  api.operation AS operation,
  status,
  api.response.error AS error,
  coalesce(
    regexp_match(api.request.data, '"groupId":"([^"]*)"')[1],
    regexp_match(api.response.data, '"groupId":"([^"]*)"')[1],
    regexp_match(api.request.data, '"groupName":"([^"]*)"')[1]
  ) AS security_group,
  coalesce(src_endpoint.ip, src_endpoint.domain) AS source,
  metadata.uid AS event_id
FROM cloudtrail
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND api.service.name = 'ec2.amazonaws.com'
  AND api.operation IN (
    'CreateSecurityGroup', 'DeleteSecurityGroup',
    'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress',
    'RevokeSecurityGroupIngress', 'RevokeSecurityGroupEgress',
    'ModifySecurityGroupRules',
    'UpdateSecurityGroupRuleDescriptionsIngress',
    'UpdateSecurityGroupRuleDescriptionsEgress')
ORDER BY time_dt DESC, event_id;
