-- Changes to IAM policies (CIS AWS Foundations 4.4): managed policies created,
-- versioned or deleted, policies attached to or detached from users, groups and
-- roles, inline policies put or deleted, trust policies and permissions boundaries
-- changed. Newest first, with the principal, the target (role, user or group
-- name) and the policy (ARN or inline name) from requestParameters. Failed
-- attempts are kept (status, error).
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND status = 'Success'` to keep the changes that happened.
SELECT
  time_dt,
  accountid,
  actor."user".uid AS principal,
  api.operation AS operation,
  status,
  api.response.error AS error,
  regexp_match(api.request.data, '"(?:roleName|userName|groupName)":"([^"]*)"')[1] AS target,
  coalesce(
    regexp_match(api.request.data, '"policyArn":"([^"]*)"')[1],
    regexp_match(api.request.data, '"policyName":"([^"]*)"')[1]
  ) AS policy,
  metadata.uid AS event_id
FROM cloudtrail
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND api.service.name = 'iam.amazonaws.com'
  AND api.operation IN (
    'CreatePolicy', 'DeletePolicy', 'CreatePolicyVersion', 'DeletePolicyVersion',
    'SetDefaultPolicyVersion',
    'AttachRolePolicy', 'DetachRolePolicy', 'AttachUserPolicy', 'DetachUserPolicy',
    'AttachGroupPolicy', 'DetachGroupPolicy',
    'PutRolePolicy', 'DeleteRolePolicy', 'PutUserPolicy', 'DeleteUserPolicy',
    'PutGroupPolicy', 'DeleteGroupPolicy',
    'UpdateAssumeRolePolicy',
    'PutRolePermissionsBoundary', 'DeleteRolePermissionsBoundary',
    'PutUserPermissionsBoundary', 'DeleteUserPermissionsBoundary')
ORDER BY time_dt DESC, event_id;
