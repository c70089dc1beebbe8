#!/usr/bin/env python3
"""trailhouse's job done by DuckDB: a benchmark peer (issue #5).

    python bench/duckdb_peer.py --input DIR --out DIR [--threads N] [--memory-limit 1GB]

Reads every CloudTrail log file under ``--input`` (``**/*.json.gz``, each one
``{"Records":[...]}``; digest and Insights files are left out) with DuckDB's ``read_json``, maps the records to OCSF 1.1.0 in
SQL, and writes zstd Parquet partitioned the way Amazon Security Lake is
(``region=<r>/accountId=<a>/eventDay=YYYYMMDD/``), rows ordered by ``time``. At the
end it prints one JSON line on stdout:

    {"engine": "duckdb", "duckdb_version": ..., "threads": N, "records": <rows written>,
     "seconds": <wall time of the job>, "output_bytes": <sum of Parquet sizes>,
     "files_in": <input files>}

``seconds`` covers listing the input, the query and the write; not the interpreter
start or ``import duckdb``. Errors exit non-zero with a message on stderr.

Pinned in bench/requirements.txt: duckdb==2.0.0 (the version this was written and
measured with). No other dependency.

How it reads
------------
The file list is read with ``format='unstructured', records=true`` and an explicit
``columns=`` type (no schema inference), so each file becomes one row with a
``Records`` list that is unnested. Top-level scalars are read as VARCHAR (which
accepts any JSON value: numbers and booleans as written, objects as JSON text, as
trailhouse's ``text()`` does). Every nested object (``userIdentity``,
``requestParameters``, ``responseElements``, ``additionalEventData``,
``resources``) is read as DuckDB's JSON type, so large or odd payloads are never
turned into inferred structs; the few members the mapping needs are pulled out with
the lenient ``from_json`` (a wrong type gives NULL instead of failing the job).
Because a file is one JSON value, ``maximum_object_size`` is set from the largest
file's uncompressed size (read from the gzip trailer).

Rows are sorted with COPY's ``ORDER_BY ("time")``, which sorts each file written: an
``ORDER BY`` in the query is not kept by a partitioned write once threads > 1.

What is mapped (same rules as crates/ocsf/src/mapper.rs and classify.rs)
------------------------------------------------------------------------
Checked against ``trailhouse replay``: on samples/ and on a generated corpus of
60,000 records with large payloads, every column below equals trailhouse's, row for
row (``time_dt`` as an instant), and the partitions are the same.

* ``class_uid``/``class_name``, ``category_uid``/``category_name``: Authentication
  3002 (signin/sso sign-in events, sts AssumeRole/AssumeRoleWithSAML/
  AssumeRoleWithWebIdentity), Account Change 3001 (trailhouse's IAM list, only for
  iam/signin/account.amazonaws.com), else API Activity 6003. As in trailhouse,
  GetFederationToken, GetSessionToken, SwitchRole ... are API Activity.
* ``activity_id``/``activity_name``: API Activity from the camel-case verb
  (Create|Run|Generate=1, Get|List|Describe|...=2, Update|Put|Modify|...=3,
  Delete|Terminate=4, else 99); Authentication 1 (Logon) or 99; Account Change by
  trailhouse's rules (password change, MFA, attach/detach, inline policies,
  UpdateAccessKey by requestParameters.status, create, delete).
* ``type_uid`` (= class_uid*100 + activity_id), ``type_name``, ``severity_id`` 1,
  ``severity`` "Informational".
* ``status`` from errorCode (Failure/Success); Authentication: responseElements.
  ConsoleLogin, else Failure on error, else "Other" (Security Lake's quirk).
  There is no ``status_id``: trailhouse's schema (= Security Lake's table) has none.
* ``time`` (epoch ms, INT64) and ``time_dt`` from eventTime.
* ``metadata``: uid=eventID, event_code=eventType, version "1.1.0", profiles
  [cloud, datetime], product {name "CloudTrail", vendor_name "AWS",
  version=eventVersion, feature.name=eventCategory (or Security Lake's literal
  "Management, Data, and Insights")}.
* ``api``: operation=eventName, version=apiVersion, service.name=eventSource,
  request {uid=requestID (or the literal '' as Security Lake writes),
  data=requestParameters as a JSON string}, response {error=errorCode,
  message=errorMessage, data=responseElements as a JSON string}.
* ``actor``: user {type, name (userName, additionalEventData.UserName, else the
  invoking service / type / "Unknown"), uid=arn, uid_alt=principalId (or
  onBehalfOf.userId), account.uid, credential_uid=accessKeyId (or credentialId)},
  session {created_time_dt, is_mfa, issuer=sessionIssuer.arn}, invoked_by,
  idp.name (webIdFederationData.federatedProvider or identityProvider).
* ``src_endpoint``: ip when sourceIPAddress is an IP literal, else domain (+ svc_name,
  as trailhouse adds for validity); uid=vpcEndpointId; API Activity without any
  source gets svc_name=eventSource.
* ``http_request.user_agent``, ``cloud`` {provider "AWS", region}.
* Class specifics: Authentication ``dst_endpoint.svc_name``, target ``user``,
  ``session`` (assumedRoleUser, credentials), ``is_mfa`` (MFAUsed); Account Change
  target ``user`` (responseElements user/role/accessKey, request userName/roleName,
  else the caller) and ``policy.uid``; API Activity ``resources`` (entries with an ARN).
* Partition values: region = awsRegion, accountId = recipientAccountId (each falling
  back to the S3 key's ``AWSLogs/<account>/CloudTrail/<region>/``, the account then
  to userIdentity.accountId), eventDay = UTC day of eventTime.
* Records trailhouse would quarantine are dropped (not written, not counted): bad or
  missing eventTime, missing eventID/eventSource/eventName, Insights records,
  invalid region or account.
* Exact duplicates (same partition, ``time`` and eventID) are written once, as
  trailhouse's writer does; ``records`` counts rows written.

What is NOT done (trailhouse does it)
-------------------------------------
* ``unmapped`` (map of every remaining field flattened to dotted keys) and
  ``observables`` are omitted (the columns are absent); ``asl_version`` is absent.
* No quarantine output, no split by Security Lake source
  (CLOUD_TRAIL_MGMT / S3_DATA / LAMBDA_EXECUTION) or by class: all rows go into one
  ``region=/accountId=/eventDay=`` tree (Security Lake wants one class per object).
* ``src_endpoint.ip`` is recognised with regular expressions (strict IPv4, loose
  IPv6), not a real address parser.
* ``time_dt`` and ``actor.session.created_time_dt`` are written as DuckDB writes
  TIMESTAMP WITH TIME ZONE (INT64 micros, UTC), not millis.
* The partition columns live in the directory names only (read back with
  ``hive_partitioning``), as in trailhouse's files.
* File names are DuckDB's (``data_0.parquet`` ...), not Security Lake's 32 hex.
* A record that is not a JSON object, or a file whose ``Records`` is not a list,
  fails the run (trailhouse quarantines it and goes on).
"""

from __future__ import annotations

import argparse
import json
import os
import struct as _struct
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

# --- classification tables (copied from crates/ocsf/src/classify.rs) ----------------

AUTHENTICATION_SIGNIN = [
    "ConsoleLogin", "ExternalIdPDirectoryLogin", "CheckMfa", "CredentialChallenge",
    "CredentialVerification", "UserAuthentication",
]
AUTHENTICATION_STS = ["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"]
AUTHENTICATION_LOGON = [
    "ConsoleLogin", "ExternalIdPDirectoryLogin", "UserAuthentication",
    "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
]
ACCOUNT_CHANGE = [
    "UpdateRole", "AttachUserPolicy", "PutRolePermissionsBoundary", "DeletePolicy",
    "RemoveUserFromGroup", "ChangePassword", "CreateAccessKey", "AttachGroupPolicy",
    "ResyncMFADevice", "DeleteRolePolicy", "PutUserPermissionsBoundary", "CreateUser",
    "CreateServiceLinkedRole", "PutRolePolicy", "DetachGroupPolicy", "UpdateAccessKey",
    "CreateInstanceProfile", "CreateRole", "DeleteUserPermissionsBoundary",
    "DeleteAccountAlias", "PutGroupPolicy", "CreateLoginProfile", "DeleteGroupPolicy",
    "DeleteLoginProfile", "DeleteUserPolicy", "DeactivateMFADevice",
    "RemoveRoleFromInstanceProfile", "UpdateUser", "EnableMFADevice", "DeleteUser",
    "AddRoleToInstanceProfile", "UpdateAccountEmailAddress", "UpdateRoleDescription",
    "DetachUserPolicy", "UpdateAssumeRolePolicy", "DeleteGroup", "DeleteServiceLinkedRole",
    "DeleteAccessKey", "AddUserToGroup", "DeleteVirtualMFADevice",
    "FinalizeSmsMfaRegistration", "DeleteRolePermissionsBoundary", "DetachRolePolicy",
    "DeleteInstanceProfile", "UpdateGroup", "UpdateLoginProfile",
    "RequestSmsMfaRegistration", "DeleteRole", "PutUserPolicy", "CreateVirtualMFADevice",
    "AttachRolePolicy", "EmailUpdated", "AccountNameUpdated", "PasswordUpdated",
    "DeleteAccountPasswordPolicy", "UpdateAccountPasswordPolicy", "UpdateAccountName",
    "TagInstanceProfile", "TagRole", "TagUser", "UntagInstanceProfile", "UntagRole",
    "UntagUser", "CreateAccountAlias",
]
ACCOUNT_CHANGE_SOURCES = ["iam.amazonaws.com", "signin.amazonaws.com", "account.amazonaws.com"]
# API Activity verbs, in priority order, matched as camel-case prefixes.
API_VERBS = [
    (["Create", "Run", "Generate"], 1),
    (["Get", "List", "Describe", "Search", "Lookup", "Head", "BatchGet", "Query", "Scan",
      "Select", "Download"], 2),
    (["Update", "Put", "Modify", "Add", "Remove", "Start", "Stop", "Attach", "Detach",
      "Associate", "Disassociate", "Tag", "Untag", "Enable", "Disable", "Register",
      "Deregister"], 3),
    (["Delete", "Terminate"], 4),
]
ACTIVITY_NAMES = {
    6003: {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
    3002: {1: "Logon", 2: "Logoff", 3: "Authentication Ticket",
           4: "Service Ticket Request", 5: "Service Ticket Renew"},
    3001: {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset",
           5: "Disable", 6: "Delete", 7: "Attach Policy", 8: "Detach Policy", 9: "Lock",
           10: "MFA Factor Enable", 11: "MFA Factor Disable"},
}

# --- input types: explicit, nothing inferred ----------------------------------------

SCALARS = [
    "eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "requestID", "eventID", "eventType",
    "apiVersion", "recipientAccountId", "eventCategory", "vpcEndpointId",
]
OBJECTS = ["userIdentity", "requestParameters", "responseElements", "additionalEventData",
           "resources"]

# from_json structures of the members the mapping reads.
IDENTITY_SHAPE = {
    "type": "VARCHAR", "principalId": "VARCHAR", "arn": "VARCHAR", "accountId": "VARCHAR",
    "userName": "VARCHAR", "invokedBy": "VARCHAR", "accessKeyId": "VARCHAR",
    "credentialId": "VARCHAR", "identityProvider": "VARCHAR",
    "onBehalfOf": {"userId": "VARCHAR"},
    "sessionContext": {
        "sessionIssuer": {"arn": "VARCHAR"},
        "attributes": {"creationDate": "VARCHAR", "mfaAuthenticated": "VARCHAR"},
        "webIdFederationData": {"federatedProvider": "VARCHAR"},
    },
}
ADDITIONAL_SHAPE = {"LoginTo": "VARCHAR", "MFAUsed": "VARCHAR", "UserName": "VARCHAR"}
REQUEST_SHAPE = {"roleArn": "VARCHAR", "roleSessionName": "VARCHAR", "status": "VARCHAR",
                 "policyArn": "VARCHAR", "userName": "VARCHAR", "roleName": "VARCHAR"}
RESPONSE_SHAPE = {
    "ConsoleLogin": "VARCHAR",
    "assumedRoleUser": {"arn": "VARCHAR", "assumedRoleId": "VARCHAR"},
    "credentials": {"accessKeyId": "VARCHAR"},
    "user": {"arn": "VARCHAR", "userId": "VARCHAR", "userName": "VARCHAR"},
    "role": {"arn": "VARCHAR", "roleId": "VARCHAR", "roleName": "VARCHAR"},
    "accessKey": {"userName": "VARCHAR"},
}
RESOURCES_SHAPE = [{"ARN": "VARCHAR", "accountId": "VARCHAR", "type": "VARCHAR"}]

IPV4 = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
IPV6 = r"^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(:((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))?$"
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


# --- small SQL builders ---------------------------------------------------------------

def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def in_list(expr: str, values: list[str]) -> str:
    return f"{expr} IN ({', '.join(lit(v) for v in values)})"


def shape(obj) -> str:
    """A from_json structure argument."""
    return lit(json.dumps(obj, separators=(",", ":")))


def verb(expr: str, verbs: list[str]) -> str:
    """Whether the camel-case name starts with one of the verbs (GetObject, not Getaway)."""
    return f"regexp_matches({expr}, {lit('^(' + '|'.join(verbs) + ')([A-Z0-9_]|$)')})"


def sql_struct(fields: dict[str, str], nullable: bool = True) -> str:
    """A struct_pack; NULL (not a struct of NULLs) when every field is NULL, as trailhouse."""
    packed = "struct_pack(" + ", ".join(f'"{k}" := {v}' for k, v in fields.items()) + ")"
    if not nullable:
        return packed
    cond = " OR ".join(f"({v}) IS NOT NULL" for v in fields.values())
    return f"CASE WHEN {cond} THEN {packed} END"


def activity_name_sql() -> str:
    whens = [f"WHEN class_uid = {c} AND activity_id = {a} THEN {lit(n)}"
             for c, names in ACTIVITY_NAMES.items() for a, n in names.items()]
    return ("CASE WHEN activity_id = 99 THEN 'Other' " + " ".join(whens) + " ELSE 'Unknown' END")


def build_query(files: list[str], max_object: int) -> str:
    record_type = "STRUCT(" + ", ".join(
        [f'"{c}" VARCHAR' for c in SCALARS] + [f'"{c}" JSON' for c in OBJECTS]) + ")[]"
    columns = "{'Records': " + lit(record_type) + "}"
    api_activity = "CASE " + " ".join(
        f"WHEN {verb('eventName', verbs)} THEN {aid}" for verbs, aid in API_VERBS) + " ELSE 99 END"
    account_activity = f"""CASE
        WHEN eventName IN ('ChangePassword', 'UpdateLoginProfile', 'PasswordUpdated') THEN 3
        WHEN eventName IN ('EnableMFADevice', 'ResyncMFADevice', 'FinalizeSmsMfaRegistration') THEN 10
        WHEN eventName = 'DeactivateMFADevice' THEN 11
        WHEN eventName = 'UpdateAccessKey' THEN CASE lower(req.status)
            WHEN 'active' THEN 2 WHEN 'inactive' THEN 5 ELSE 99 END
        WHEN eventName IN ('AddRoleToInstanceProfile', 'AddUserToGroup') THEN 7
        WHEN eventName IN ('RemoveRoleFromInstanceProfile', 'RemoveUserFromGroup') THEN 8
        WHEN {verb('eventName', ['Attach'])} THEN 7
        WHEN {verb('eventName', ['Detach'])} THEN 8
        WHEN {verb('eventName', ['Put'])}
             AND (suffix(eventName, 'Policy') OR suffix(eventName, 'PermissionsBoundary')) THEN 7
        WHEN {verb('eventName', ['Delete'])}
             AND eventName NOT IN ('DeletePolicy', 'DeleteAccountPasswordPolicy')
             AND (suffix(eventName, 'Policy') OR suffix(eventName, 'PermissionsBoundary')) THEN 8
        WHEN {verb('eventName', ['Create'])} THEN 1
        WHEN {verb('eventName', ['Delete'])} THEN 6
        ELSE 99 END"""

    actor_user = sql_struct({
        "type": "CASE WHEN ui IS NULL THEN 'Unknown' ELSE ui.type END",
        # trailhouse's fallback: the invoking service, else the type, else Unknown.
        "name": """coalesce(actor_name, CASE
                    WHEN ui.arn IS NOT NULL OR ui.accountId IS NOT NULL THEN NULL
                    WHEN ui IS NOT NULL THEN coalesce(ui.invokedBy, ui.type, 'Unknown')
                    ELSE 'Unknown' END)""",
        "uid_alt": "coalesce(ui.principalId, ui.onBehalfOf.userId)",
        "uid": "ui.arn",
        "account": "CASE WHEN ui.accountId IS NOT NULL THEN struct_pack(uid := ui.accountId) END",
        "credential_uid": "coalesce(ui.accessKeyId, ui.credentialId)",
    })
    actor_session = sql_struct({
        "created_time_dt": "try_cast(ui.sessionContext.attributes.creationDate AS TIMESTAMPTZ)",
        "is_mfa": "try_cast(lower(ui.sessionContext.attributes.mfaAuthenticated) AS BOOLEAN)",
        "issuer": "ui.sessionContext.sessionIssuer.arn",
    })
    idp = sql_struct({"name": "coalesce(ui.sessionContext.webIdFederationData.federatedProvider, "
                              "ui.identityProvider)"})
    # actor.user always has a type or a name, so actor is never NULL.
    actor = sql_struct({"user": actor_user, "session": actor_session,
                        "invoked_by": "ui.invokedBy", "idp": idp}, nullable=False)
    src_endpoint = sql_struct({
        "uid": "vpcEndpointId",
        "ip": "src_ip",
        "domain": "CASE WHEN src_ip IS NULL THEN sourceIPAddress END",
        # not an IP: a service principal or "AWS Internal"; no source at all: the service.
        "svc_name": """CASE WHEN src_ip IS NULL AND sourceIPAddress IS NOT NULL THEN sourceIPAddress
                    WHEN class_uid = 6003 AND sourceIPAddress IS NULL AND vpcEndpointId IS NULL
                    THEN eventSource END""",
    })
    auth_session = sql_struct({
        "uid": "resp.assumedRoleUser.arn",
        "uid_alt": "resp.assumedRoleUser.assumedRoleId",
        "credential_uid": "resp.credentials.accessKeyId",
        "issuer": """CASE WHEN coalesce(resp.assumedRoleUser.arn, resp.assumedRoleUser.assumedRoleId,
                    resp.credentials.accessKeyId) IS NOT NULL THEN req.roleArn END""",
    })
    api_response = sql_struct({"error": "errorCode", "message": "errorMessage",
                               "data": "responseElements::VARCHAR"})
    target_user = sql_struct({"uid_alt": "t_uid_alt", "uid": "t_uid", "name": "t_name"})

    return f"""
WITH raw AS (
    SELECT filename, unnest(Records, max_depth := 2)
    FROM read_json([{', '.join(lit(f) for f in files)}], format = 'unstructured', records = true,
                   columns = {columns}, filename = true, compression = 'gzip',
                   maximum_object_size = {max_object})
),
rec AS (   -- validate and derive what every later step needs
    SELECT *,
        epoch_ms(ts) AS time_ms,
        CASE
            WHEN {in_list('eventSource', ['signin.amazonaws.com', 'sso.amazonaws.com'])}
                 AND {in_list('eventName', AUTHENTICATION_SIGNIN)} THEN 3002
            WHEN eventSource = 'sts.amazonaws.com' AND {in_list('eventName', AUTHENTICATION_STS)} THEN 3002
            WHEN {in_list('eventSource', ACCOUNT_CHANGE_SOURCES)}
                 AND {in_list('eventName', ACCOUNT_CHANGE)} THEN 3001
            ELSE 6003 END AS class_uid
    FROM (
        SELECT *,
            try_cast(eventTime AS TIMESTAMPTZ) AS ts,
            coalesce(awsRegion, regexp_extract(filename, '/AWSLogs/[^/]+/CloudTrail/([^/]+)/', 1)) AS p_region,
            coalesce(recipientAccountId,
                     nullif(regexp_extract(filename, '/AWSLogs/([^/]+)/CloudTrail/', 1), ''),
                     ui.accountId) AS p_account
        FROM (SELECT *,
                     CASE WHEN starts_with(userIdentity, '{{')
                          THEN from_json(userIdentity, {shape(IDENTITY_SHAPE)}) END AS ui,
                     from_json(additionalEventData, {shape(ADDITIONAL_SHAPE)}) AS aed
              FROM raw)
    )
    WHERE ts IS NOT NULL AND epoch_ms(ts) BETWEEN 0 AND {MAX_TIME_MS}
      AND eventID IS NOT NULL AND eventSource IS NOT NULL AND eventName IS NOT NULL
      AND eventType IS DISTINCT FROM 'AwsCloudTrailInsight'
      AND regexp_full_match(p_region, '[a-z][a-z0-9-]{{0,31}}')
      AND regexp_full_match(p_account, '[0-9]{{1,32}}')
),
cls AS (   -- request/response members (identity classes only), activity, actor
    SELECT *,
        CASE class_uid
            WHEN 6003 THEN {api_activity}
            WHEN 3002 THEN CASE WHEN {in_list('eventName', AUTHENTICATION_LOGON)} THEN 1 ELSE 99 END
            ELSE {account_activity} END AS activity_id,
        coalesce(ui.userName, aed.UserName) AS actor_name,
        CASE WHEN regexp_matches(sourceIPAddress, {lit(IPV4)})
                  OR regexp_matches(sourceIPAddress, {lit(IPV6)}) THEN sourceIPAddress END AS src_ip
    FROM (SELECT *,
                 CASE WHEN class_uid <> 6003 THEN from_json(requestParameters, {shape(REQUEST_SHAPE)}) END AS req,
                 CASE WHEN class_uid <> 6003 THEN from_json(responseElements, {shape(RESPONSE_SHAPE)}) END AS resp
          FROM rec)
),
tgt AS (   -- the account that changed / signed in (identity classes)
    SELECT *,
        CASE WHEN class_uid = 3002 THEN coalesce(req.roleArn, ui.arn)
             WHEN class_uid = 3001 THEN coalesce(ac_uid, CASE WHEN ac_name IS NULL THEN ui.arn END) END AS t_uid,
        CASE WHEN class_uid = 3002 THEN ui.principalId
             WHEN class_uid = 3001 THEN coalesce(ac_uid_alt,
                 CASE WHEN ac_uid IS NULL AND ac_name IS NULL THEN ui.principalId END) END AS t_uid_alt,
        CASE WHEN class_uid = 3002 THEN
                 CASE WHEN req.roleSessionName IS NOT NULL THEN req.roleSessionName
                      WHEN coalesce(req.roleArn, ui.arn) IS NULL THEN coalesce(ui.userName, 'Unknown') END
             WHEN class_uid = 3001 THEN
                 CASE WHEN ac_uid IS NOT NULL OR ac_name IS NOT NULL THEN ac_name
                      WHEN ui.arn IS NULL THEN coalesce(ui.userName, 'Unknown')
                      ELSE ui.userName END END AS t_name
    FROM (SELECT *,
                 coalesce(resp."user".arn, resp.role.arn) AS ac_uid,
                 CASE WHEN resp."user" IS NOT NULL THEN resp."user".userId ELSE resp.role.roleId END AS ac_uid_alt,
                 coalesce(CASE WHEN resp."user" IS NOT NULL THEN resp."user".userName
                               WHEN resp.role IS NOT NULL THEN resp.role.roleName
                               ELSE resp.accessKey.userName END,
                          req.userName, req.roleName) AS ac_name
          FROM cls)
)
SELECT
    struct_pack(
        product := struct_pack(
            version := eventVersion, name := 'CloudTrail', vendor_name := 'AWS',
            feature := struct_pack(name := coalesce(eventCategory, 'Management, Data, and Insights'))),
        event_code := eventType,
        uid := eventID,
        profiles := ['cloud', 'datetime'],
        version := '1.1.0') AS metadata,
    time_ms AS "time",
    ts AS time_dt,
    struct_pack(region := p_region, provider := 'AWS') AS cloud,
    struct_pack(
        response := {api_response},
        operation := eventName,
        version := apiVersion,
        service := struct_pack(name := eventSource),
        request := struct_pack(data := requestParameters::VARCHAR,
                               uid := coalesce(requestID, ''''''))) AS api,
    CASE WHEN class_uid = 3002 THEN struct_pack(svc_name := coalesce(aed.LoginTo, eventSource)) END AS dst_endpoint,
    {actor} AS actor,
    CASE WHEN userAgent IS NOT NULL THEN struct_pack(user_agent := userAgent) END AS http_request,
    {src_endpoint} AS src_endpoint,
    CASE WHEN class_uid = 3002 THEN {auth_session} END AS session,
    CASE WHEN class_uid = 3001 AND req.policyArn IS NOT NULL
         THEN struct_pack(uid := req.policyArn) END AS policy,
    CASE WHEN class_uid = 6003 THEN nullif(list_transform(
            list_filter(from_json(resources, {shape(RESOURCES_SHAPE)}), lambda r: r."ARN" IS NOT NULL),
            lambda r: struct_pack(uid := r."ARN",
                             owner := CASE WHEN r.accountId IS NOT NULL THEN
                                 struct_pack(account := struct_pack(uid := r.accountId)) END,
                             type := r.type)), []) END AS resources,
    CASE class_uid WHEN 6003 THEN 'API Activity' WHEN 3002 THEN 'Authentication'
                   ELSE 'Account Change' END AS class_name,
    class_uid::INTEGER AS class_uid,
    CASE class_uid WHEN 6003 THEN 'Application Activity'
                   ELSE 'Identity & Access Management' END AS category_name,
    (CASE class_uid WHEN 6003 THEN 6 ELSE 3 END)::INTEGER AS category_uid,
    1::INTEGER AS severity_id,
    'Informational' AS severity,
    {target_user} AS "user",
    activity_name,
    activity_id::INTEGER AS activity_id,
    (class_uid * 100 + activity_id)::BIGINT AS type_uid,
    (CASE class_uid WHEN 6003 THEN 'API Activity' WHEN 3002 THEN 'Authentication'
                    ELSE 'Account Change' END) || ': ' || activity_name AS type_name,
    CASE WHEN class_uid = 3002 THEN coalesce(resp.ConsoleLogin,
                                             CASE WHEN errorCode IS NOT NULL THEN 'Failure' ELSE 'Other' END)
         WHEN errorCode IS NOT NULL THEN 'Failure' ELSE 'Success' END AS status,
    CASE WHEN class_uid = 3002 THEN CASE aed.MFAUsed
        WHEN 'Yes' THEN true WHEN 'yes' THEN true WHEN 'true' THEN true
        WHEN 'No' THEN false WHEN 'no' THEN false WHEN 'false' THEN false END END AS is_mfa,
    p_region AS region,
    p_account AS "accountId",
    strftime(ts, '%Y%m%d') AS "eventDay"
FROM (SELECT *, {activity_name_sql()} AS activity_name FROM tgt)
-- Exact duplicates (CloudTrail delivers at least once): one row per partition, time
-- and eventID, as trailhouse's writer keeps.
QUALIFY row_number() OVER (PARTITION BY p_region, p_account, time_ms, eventID) = 1
"""


# --- the job --------------------------------------------------------------------------

def fail(msg: str) -> NoReturn:
    print(f"duckdb_peer: error: {msg}", file=sys.stderr)
    sys.exit(1)


def gzip_isize(path: Path) -> int:
    """Uncompressed size from the gzip trailer (mod 2**32): a hint for the reader's buffer."""
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return _struct.unpack("<I", f.read(4))[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, type=Path, help="folder with AWSLogs/... *.json.gz")
    ap.add_argument("--out", required=True, type=Path, help="output folder (made; must be empty)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--memory-limit", default="1GB")
    args = ap.parse_args()
    if args.threads < 1:
        fail("--threads must be at least 1")
    if not args.input.is_dir():
        fail(f"input {args.input} is not a directory")
    if args.out.exists() and any(args.out.iterdir()):
        fail(f"output {args.out} exists and is not empty")

    import duckdb  # not timed

    started = time.perf_counter()
    # Log files only: digest and Insights files share the suffix but are not records.
    inputs = sorted(p.resolve() for p in args.input.rglob("*.json.gz") if p.is_file()
                    and not {"CloudTrail-Digest", "CloudTrail-Insight"} & set(p.parts))
    if not inputs:
        fail(f"no CloudTrail *.json.gz files under {args.input}")
    # One file is one JSON value: the reader's object limit must hold the largest.
    largest = max(gzip_isize(p) for p in inputs)
    max_object = max(16 << 20, 1 << (largest + (largest >> 4) + 1024).bit_length())

    spill = tempfile.TemporaryDirectory(prefix="duckdb_peer_spill_")
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {args.threads}")
        con.execute(f"SET temp_directory = {lit(spill.name)}")  # not ./.tmp
        con.execute(f"SET memory_limit = {lit(args.memory_limit)}")
        con.execute("SET TimeZone = 'UTC'")
        # Sorting is COPY's ORDER_BY: it sorts each file it writes. (An ORDER BY in the
        # query is not kept by a partitioned write with more than one thread.)
        con.execute("SET preserve_insertion_order = false")
        args.out.mkdir(parents=True, exist_ok=True)
        query = build_query([str(p) for p in inputs], max_object)
        records = con.execute(
            f"COPY ({query}) TO {lit(str(args.out.resolve()))} (FORMAT PARQUET, COMPRESSION ZSTD, "
            'PARTITION_BY (region, "accountId", "eventDay"), ORDER_BY ("time"), '
            "OVERWRITE_OR_IGNORE true)").fetchall()[0][0]
    except duckdb.Error as e:
        fail(f"DuckDB failed: {e}")
    finally:
        con.close()
        spill.cleanup()
    seconds = time.perf_counter() - started

    outputs = [p for p in args.out.rglob("*.parquet") if p.is_file()]
    print(json.dumps({
        "engine": "duckdb",
        "duckdb_version": duckdb.__version__,
        "threads": args.threads,
        "records": records,
        "seconds": round(seconds, 3),
        "output_bytes": sum(p.stat().st_size for p in outputs),
        "files_in": len(inputs),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
