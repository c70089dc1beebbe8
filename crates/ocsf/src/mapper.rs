//! The CloudTrail → OCSF 1.1.0 mapper: each record goes straight into Arrow column
//! builders (no JSON tree, no intermediate OCSF document), the way Security Lake maps
//! it (reference: ocsf/examples `AWS/v1.1.0/CloudTrail`, security-lake-spec.md §3).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int32Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, TimestampMillisecondArray,
};
use arrow_buffer::{NullBuffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Fields};
use serde_json::value::RawValue;
use trailhouse_cloudtrail::record::{RawJson, RawObject, as_bool, is_empty_value};
use trailhouse_cloudtrail::time::parse_rfc3339_ms;
use trailhouse_cloudtrail::{Field, ParseError, Record, is_valid_account, is_valid_region};

use crate::classify::{EventFacts, OcsfClass, Source, activity, classify, source};
use crate::schema::{OCSF_VERSION, schema, struct_fields};
use crate::unmapped::Unmapped;

/// Why a record was not mapped. Each one sends the record to quarantine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    /// The bytes are not a JSON object.
    #[error("not a CloudTrail record: {0}")]
    NotARecord(String),
    /// A field every CloudTrail record has is missing or null.
    #[error("record has no {0}")]
    Missing(&'static str),
    /// `eventTime` is not an RFC 3339 timestamp.
    #[error("eventTime {0:?} is not an RFC 3339 timestamp")]
    BadTime(String),
    /// `awsRegion` cannot be a region, so it cannot name a partition.
    #[error("awsRegion {0:?} is not a valid region (lowercase letters, digits, '-')")]
    BadRegion(String),
    /// The account cannot be an account id, so it cannot name a partition.
    #[error("account {0:?} is not a valid account id (digits only)")]
    BadAccount(String),
    /// A CloudTrail Insights record inside a log file.
    #[error("CloudTrail Insights record (eventType AwsCloudTrailInsight) in a log file")]
    InsightRecord,
    /// A field could not be flattened into `unmapped`.
    #[error("field {0} could not be flattened: {1}")]
    Unflattenable(String, String),
    /// The caller found no partition for the row (see [`OcsfBuilder::append_to`]).
    #[error("no partition for the row: {0}")]
    NoPartition(String),
}

/// What the object a record came from says about it (from its S3 key).
#[derive(Debug, Clone, Default)]
pub struct ObjectContext {
    /// The account in the key (`AWSLogs/{account}/...`), used when the record has
    /// no `recipientAccountId`.
    pub account: Option<String>,
    /// The region in the key, used when the record has no `awsRegion`.
    pub region: Option<String>,
}

/// Where a mapped row belongs: the parts of its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowInfo<'a> {
    /// OCSF class of the row.
    pub class: OcsfClass,
    /// Security Lake source of the row.
    pub source: Source,
    /// `time` in epoch milliseconds.
    pub time_ms: i64,
    /// Validated region.
    pub region: Cow<'a, str>,
    /// Validated account id.
    pub account: Cow<'a, str>,
}

/// 9999-12-31T23:59:59.999Z, the last instant with a four-digit year.
const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Observable type ids of OCSF 1.1.0 used here.
mod observable {
    pub const HOSTNAME: (i32, &str) = (1, "Hostname");
    pub const IP_ADDRESS: (i32, &str) = (2, "IP Address");
    pub const USER_NAME: (i32, &str) = (4, "User Name");
    pub const RESOURCE_UID: (i32, &str) = (10, "Resource UID");
}

/// Fields of `userIdentity` that always go to a column when present.
const IDENTITY_MAPPED: &[&str] = &[
    "type",
    "arn",
    "accountId",
    "invokedBy",
    "sessionContext.sessionIssuer.arn",
];

/// Arrow builders for the OCSF columns; one row per mapped record.
///
/// Rows go to lanes: each lane is a full set of column builders and finishes into
/// its own batch. [`append`](Self::append) fills lane 0;
/// [`append_to`](Self::append_to) lets the caller pick the lane from where the row
/// belongs, so that rows of different partitions are built apart and never copied
/// to be split.
pub struct OcsfBuilder {
    /// Rows in all lanes.
    rows: usize,
    unmapped: Unmapped,
    skip: Vec<&'static str>,
    lanes: Vec<Lane>,
}

/// The column builders of one lane.
struct Lane {
    rows: usize,
    // metadata
    md_product_version: StringBuilder,
    md_feature_name: StringBuilder,
    md_event_code: StringBuilder,
    md_uid: StringBuilder,
    time: Vec<i64>,
    cloud_region: StringBuilder,
    // api
    api_resp_error: StringBuilder,
    api_resp_message: StringBuilder,
    api_resp_data: StringBuilder,
    api_resp_valid: NullBufferBuilder,
    api_operation: StringBuilder,
    api_version: StringBuilder,
    api_service_name: StringBuilder,
    api_req_data: StringBuilder,
    api_req_uid: StringBuilder,
    dst_svc_name: StringBuilder,
    // actor
    actor_user_type: StringBuilder,
    actor_user_name: StringBuilder,
    actor_user_uid_alt: StringBuilder,
    actor_user_uid: StringBuilder,
    actor_user_account_uid: StringBuilder,
    actor_user_credential_uid: StringBuilder,
    actor_user_valid: NullBufferBuilder,
    actor_session_created: TimestampMillisecondBuilder,
    actor_session_is_mfa: BooleanBuilder,
    actor_session_issuer: StringBuilder,
    actor_session_valid: NullBufferBuilder,
    actor_invoked_by: StringBuilder,
    actor_idp_name: StringBuilder,
    actor_valid: NullBufferBuilder,
    http_user_agent: StringBuilder,
    // src_endpoint
    src_uid: StringBuilder,
    src_ip: StringBuilder,
    src_domain: StringBuilder,
    src_svc_name: StringBuilder,
    src_valid: NullBufferBuilder,
    // session, policy
    session_uid: StringBuilder,
    session_uid_alt: StringBuilder,
    session_credential_uid: StringBuilder,
    session_issuer: StringBuilder,
    session_valid: NullBufferBuilder,
    policy_uid: StringBuilder,
    // resources
    res_offsets: Vec<i32>,
    res_uid: StringBuilder,
    res_owner_account: StringBuilder,
    res_type: StringBuilder,
    // class & activity
    class: Vec<OcsfClass>,
    activity_id: Vec<i32>,
    // user
    user_uid_alt: StringBuilder,
    user_uid: StringBuilder,
    user_name: StringBuilder,
    user_valid: NullBufferBuilder,
    status: StringBuilder,
    is_mfa: BooleanBuilder,
    // unmapped
    um_offsets: Vec<i32>,
    um_keys: StringBuilder,
    um_values: StringBuilder,
    accountid: StringBuilder,
    region: StringBuilder,
    // observables
    obs_offsets: Vec<i32>,
    obs_name: StringBuilder,
    obs_value: StringBuilder,
    obs_type: StringBuilder,
    obs_type_id: Int32Builder,
}

impl Default for OcsfBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends a value and says whether there was one.
#[inline]
fn put(b: &mut StringBuilder, v: Option<&str>) -> bool {
    b.append_option(v);
    v.is_some()
}

/// Copies JSON text without insignificant whitespace, borrowing when there is none
/// (CloudTrail writes compact JSON, so that is the usual case). Key order is kept.
pub fn compact_json(s: &str) -> Cow<'_, str> {
    if is_compact(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i + 1),
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.push_str(&s[from..i]);
                i += 1;
                from = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[from..]);
    Cow::Owned(out)
}

/// Whether `b` has no whitespace outside its strings.
///
/// Cheap for the usual compact JSON, whose strings (keys included) are many and
/// short while its spaces and backslashes are few: a raw tab or line break cannot be
/// inside a JSON string (it must be escaped), and whether a space is inside one
/// follows from the parity of the quotes before it, skipping escaped bytes. So the
/// scan stops only at spaces and backslashes, found by vector search, and counts
/// quotes in between, rather than stopping at every quote.
fn is_compact(b: &[u8]) -> bool {
    if memchr::memchr3(b'\t', b'\n', b'\r', b).is_some() {
        return false;
    }
    let mut in_string = false;
    let mut from = 0;
    for space in memchr::memchr_iter(b' ', b) {
        in_string = in_string_at(b, from, space, in_string);
        if !in_string {
            return false;
        }
        // A space is neither a quote nor a backslash: the next stretch may start on
        // it, even when it was escaped.
        from = space;
    }
    true
}

/// Whether position `to` is inside a string, given whether `from` is. Inside a
/// string a backslash escapes the next byte; outside one it is an ordinary byte (not
/// JSON, but the rule must hold for any text).
fn in_string_at(b: &[u8], from: usize, to: usize, mut in_string: bool) -> bool {
    let mut at = from;
    for slash in memchr::memchr_iter(b'\\', &b[from..to]).map(|off| from + off) {
        if slash < at {
            continue; // escaped by the backslash before it
        }
        in_string ^= odd_quotes(&b[at..slash]);
        at = slash + if in_string { 2 } else { 1 };
    }
    if at > to {
        return true; // the byte at `to` is escaped, so inside a string
    }
    in_string ^ odd_quotes(&b[at..to])
}

/// Whether `s` holds an odd number of quotes: byte-wise XOR over 64-byte blocks,
/// which the compiler turns into vector compares even for the baseline x86-64.
fn odd_quotes(s: &[u8]) -> bool {
    let quote = |acc: u8, &c: &u8| acc ^ u8::from(c == b'"');
    let mut blocks = s.chunks_exact(64);
    let mut parity = 0u8;
    for block in &mut blocks {
        parity ^= block.iter().fold(0, quote);
    }
    (parity ^ blocks.remainder().iter().fold(0, quote)) & 1 == 1
}

/// The index just past the closing quote of the string whose contents start at `i`
/// (`b.len()` when the string is not closed).
fn string_end(b: &[u8], mut i: usize) -> usize {
    loop {
        match memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
            None => return b.len(),
            Some(off) if b[i + off] == b'\\' => i += off + 2,
            Some(off) => return i + off + 1,
        }
    }
}

fn hostname_like(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// One entry of `resources[]`: uid (the ARN), owner account, type.
type Resource<'a> = (Cow<'a, str>, Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// The parts of `userIdentity` the mapper reads.
#[derive(Default)]
struct Identity<'a> {
    obj: Option<RawObject<'a>>,
    user_type: Option<Cow<'a, str>>,
    principal_id: Option<Cow<'a, str>>,
    arn: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    user_name: Option<Cow<'a, str>>,
}

impl OcsfBuilder {
    /// Empty builders.
    pub fn new() -> Self {
        OcsfBuilder {
            rows: 0,
            unmapped: Unmapped::default(),
            skip: Vec::with_capacity(16),
            lanes: vec![Lane::new()],
        }
    }

    /// Rows appended and not yet finished, in all lanes.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no lane holds rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Maps one record's bytes. On error nothing is appended.
    pub fn append_bytes<'a>(
        &mut self,
        bytes: &'a [u8],
        ctx: &'a ObjectContext,
    ) -> Result<RowInfo<'a>, MapError> {
        self.append_parsed(Record::parse(bytes), ctx, |_| Ok(Some(0)))
    }

    /// Maps one record as [`LogReader::next_record_with`] hands it out (parsed, or why
    /// its bytes are no record) into the lane that `route` picks, as
    /// [`append_to`](Self::append_to) does. On error nothing is appended.
    ///
    /// [`LogReader::next_record_with`]: trailhouse_cloudtrail::LogReader::next_record_with
    pub fn append_parsed<'a>(
        &mut self,
        rec: Result<Record<'a>, ParseError>,
        ctx: &'a ObjectContext,
        route: impl FnOnce(&RowInfo<'a>) -> Result<Option<usize>, String>,
    ) -> Result<RowInfo<'a>, MapError> {
        let rec = rec.map_err(|e| MapError::NotARecord(e.to_string()))?;
        self.append_to(&rec, ctx, route)
    }

    /// Maps one record into lane 0. Everything that can fail is checked before the
    /// first column is touched, so on error nothing is appended.
    pub fn append<'a>(
        &mut self,
        rec: &Record<'a>,
        ctx: &'a ObjectContext,
    ) -> Result<RowInfo<'a>, MapError> {
        self.append_to(rec, ctx, |_| Ok(Some(0)))
    }

    /// Maps one record into the lane that `route` picks from where the row belongs
    /// (lanes are numbered from 0; a lane is made when first named). `route` is
    /// called once the record is known to map, just before the first column is
    /// touched; its error refuses the record ([`MapError::NoPartition`]), and `None`
    /// appends nothing but accepts the record (the caller keeps it in another form:
    /// it maps again the same way with the partition's account and region as
    /// context). On error nothing is appended.
    pub fn append_to<'a>(
        &mut self,
        rec: &Record<'a>,
        ctx: &'a ObjectContext,
        route: impl FnOnce(&RowInfo<'a>) -> Result<Option<usize>, String>,
    ) -> Result<RowInfo<'a>, MapError> {
        // --- validate what the row cannot do without ---------------------------------
        let event_time = rec
            .text(Field::EventTime)
            .ok_or(MapError::Missing("eventTime"))?;
        // Before 1970 cannot be CloudTrail (2013 on); the bound keeps partition days sane.
        let time_ms = parse_rfc3339_ms(&event_time)
            .filter(|t| (0..=MAX_TIME_MS).contains(t))
            .ok_or_else(|| MapError::BadTime(event_time.to_string()))?;
        let event_id = rec
            .text(Field::EventId)
            .ok_or(MapError::Missing("eventID"))?;
        let event_type = rec.text(Field::EventType);
        if event_type.as_deref() == Some("AwsCloudTrailInsight") {
            return Err(MapError::InsightRecord);
        }
        let event_source = rec
            .text(Field::EventSource)
            .ok_or(MapError::Missing("eventSource"))?;
        let event_name = rec
            .text(Field::EventName)
            .ok_or(MapError::Missing("eventName"))?;
        let region: Cow<'a, str> = match rec.text(Field::AwsRegion) {
            Some(r) => r,
            None => Cow::Borrowed(
                ctx.region
                    .as_deref()
                    .ok_or(MapError::Missing("awsRegion"))?,
            ),
        };
        if !is_valid_region(&region) {
            return Err(MapError::BadRegion(region.into_owned()));
        }
        let mut ident = Identity::default();
        if let Some(raw) = rec.raw(Field::UserIdentity) {
            ident.obj = RawObject::parse(raw);
        }
        if let Some(o) = &ident.obj {
            ident.user_type = o.text("type");
            ident.principal_id = o.text("principalId");
            ident.arn = o.text("arn");
            ident.account_id = o.text("accountId");
            ident.user_name = o.text("userName");
        }
        let account: Cow<'a, str> = match rec.text(Field::RecipientAccountId) {
            Some(a) => a,
            None => match (&ctx.account, &ident.account_id) {
                (Some(a), _) => Cow::Borrowed(a.as_str()),
                (None, Some(a)) => a.clone(),
                (None, None) => return Err(MapError::Missing("recipientAccountId")),
            },
        };
        if !is_valid_account(&account) {
            return Err(MapError::BadAccount(account.into_owned()));
        }

        // --- classify -------------------------------------------------------------------
        let class = classify(&event_source, &event_name);
        let event_category = rec.text(Field::EventCategory);
        let resources = rec.raw(Field::Resources);
        let facts = EventFacts {
            event_source: &event_source,
            event_name: &event_name,
            event_category: event_category.as_deref(),
            management_event: rec.raw(Field::ManagementEvent).and_then(as_bool),
            event_type: event_type.as_deref(),
            has_s3_object_resource: resources
                .is_some_and(|r| r.get().contains("\"AWS::S3::Object\"")),
        };
        let src = source(&facts);
        let request = rec
            .raw(Field::RequestParameters)
            .filter(|r| r.get() != "null");
        let response = rec
            .raw(Field::ResponseElements)
            .filter(|r| r.get() != "null");
        // Request/response members are read only by the identity classes.
        let (req_obj, resp_obj) = if class == OcsfClass::ApiActivity {
            (None, None)
        } else {
            (
                request.and_then(RawObject::parse),
                response.and_then(RawObject::parse),
            )
        };
        let access_key_status = req_obj.as_ref().and_then(|o| o.text("status"));
        let activity_id = activity(class, &event_name, access_key_status.as_deref());
        let additional = rec.object(Field::AdditionalEventData);

        // --- unmapped first: it is the last thing that can fail -----------------------------
        self.unmapped.clear();
        self.skip.clear();
        let session_ctx = ident.obj.as_ref().and_then(|o| o.object("sessionContext"));
        let attributes = session_ctx.as_ref().and_then(|s| s.object("attributes"));
        let created_ms = attributes
            .as_ref()
            .and_then(|a| a.text("creationDate"))
            .and_then(|t| parse_rfc3339_ms(&t));
        let session_mfa = attributes
            .as_ref()
            .and_then(|a| a.get("mfaAuthenticated"))
            .and_then(as_bool);
        let issuer = session_ctx
            .as_ref()
            .and_then(|s| s.object("sessionIssuer"))
            .and_then(|i| i.text("arn"));
        let federated = session_ctx
            .as_ref()
            .and_then(|s| s.object("webIdFederationData"))
            .and_then(|w| w.text("federatedProvider"));
        let on_behalf_of = ident.obj.as_ref().and_then(|o| o.object("onBehalfOf"));
        let uid_alt = match &ident.principal_id {
            Some(p) => Some(p.clone()),
            None => on_behalf_of.as_ref().and_then(|b| b.text("userId")),
        };
        let access_key = ident.obj.as_ref().and_then(|o| o.text("accessKeyId"));
        let credential_from_key = access_key.is_some();
        let credential = match access_key {
            Some(k) => Some(k),
            None => ident.obj.as_ref().and_then(|o| o.text("credentialId")),
        };
        let idp_from_federation = federated.is_some();
        let idp_name = match federated {
            Some(f) => Some(f),
            None => ident.obj.as_ref().and_then(|o| o.text("identityProvider")),
        };
        let additional_user = if ident.user_name.is_none() {
            additional.as_ref().and_then(|a| a.text("UserName"))
        } else {
            None
        };
        let actor_name = ident.user_name.clone().or_else(|| additional_user.clone());

        if ident.obj.is_some() {
            self.skip.extend_from_slice(IDENTITY_MAPPED);
            if ident.principal_id.is_some() {
                self.skip.push("principalId");
            } else if uid_alt.is_some() {
                self.skip.push("onBehalfOf.userId");
            }
            if ident.user_name.is_some() {
                self.skip.push("userName");
            }
            if credential.is_some() {
                self.skip.push(if credential_from_key {
                    "accessKeyId"
                } else {
                    "credentialId"
                });
            }
            if idp_name.is_some() {
                self.skip.push(if idp_from_federation {
                    "sessionContext.webIdFederationData.federatedProvider"
                } else {
                    "identityProvider"
                });
            }
            if created_ms.is_some() {
                self.skip.push("sessionContext.attributes.creationDate");
            }
            if session_mfa.is_some() {
                self.skip.push("sessionContext.attributes.mfaAuthenticated");
            }
        }
        let login_to = if class == OcsfClass::Authentication {
            additional.as_ref().and_then(|a| a.text("LoginTo"))
        } else {
            None
        };
        let mfa_used = if class == OcsfClass::Authentication {
            additional
                .as_ref()
                .and_then(|a| a.text("MFAUsed"))
                .and_then(|v| match v.as_ref() {
                    "Yes" | "yes" | "true" => Some(true),
                    "No" | "no" | "false" => Some(false),
                    _ => None,
                })
        } else {
            None
        };
        let mut resource_rows: Vec<Resource<'a>> = Vec::new();
        for (name, raw, slot) in rec.members() {
            let flatten_all = match slot {
                None => true,
                Some(Field::UserIdentity) => {
                    // `skip` is empty unless userIdentity is an object.
                    self.unmapped
                        .flatten(name, raw, &self.skip)
                        .map_err(|e| MapError::Unflattenable(name.to_string(), e.to_string()))?;
                    false
                }
                Some(Field::AdditionalEventData) => {
                    let consumed = [
                        login_to.is_some().then_some("LoginTo"),
                        mfa_used.is_some().then_some("MFAUsed"),
                        additional_user.is_some().then_some("UserName"),
                    ];
                    let mut skip = [""; 3];
                    let mut n = 0;
                    for key in consumed.into_iter().flatten() {
                        skip[n] = key;
                        n += 1;
                    }
                    self.unmapped
                        .flatten(name, raw, &skip[..n])
                        .map_err(|e| MapError::Unflattenable(name.to_string(), e.to_string()))?;
                    false
                }
                Some(Field::Resources) if class == OcsfClass::ApiActivity => {
                    self.resources(raw, &mut resource_rows)?;
                    false
                }
                Some(Field::Resources) => true,
                Some(Field::RecipientAccountId | Field::ManagementEvent) => true,
                Some(_) => false,
            };
            if flatten_all {
                self.unmapped
                    .flatten(name, raw, &[])
                    .map_err(|e| MapError::Unflattenable(name.to_string(), e.to_string()))?;
            }
        }

        let info = RowInfo {
            class,
            source: src,
            time_ms,
            region,
            account,
        };
        let Some(lane) = route(&info).map_err(MapError::NoPartition)? else {
            return Ok(info);
        };
        if self.lanes.len() <= lane {
            self.lanes.resize_with(lane + 1, Lane::new);
        }
        let c = &mut self.lanes[lane];

        // --- append: nothing below fails ---------------------------------------------------
        c.rows += 1;
        self.rows += 1;
        c.time.push(time_ms);
        c.class.push(class);
        c.activity_id.push(activity_id);

        // metadata
        put(
            &mut c.md_product_version,
            rec.text(Field::EventVersion).as_deref(),
        );
        // Security Lake writes this literal when eventCategory is absent (API Activity sample).
        put(
            &mut c.md_feature_name,
            Some(
                event_category
                    .as_deref()
                    .unwrap_or("Management, Data, and Insights"),
            ),
        );
        put(&mut c.md_event_code, event_type.as_deref());
        put(&mut c.md_uid, Some(&event_id));
        put(&mut c.cloud_region, Some(&info.region));

        // api
        let error_code = rec.text(Field::ErrorCode);
        let r1 = put(&mut c.api_resp_error, error_code.as_deref());
        let r2 = put(
            &mut c.api_resp_message,
            rec.text(Field::ErrorMessage).as_deref(),
        );
        let r3 = put(
            &mut c.api_resp_data,
            response.map(|r| compact_json(r.get())).as_deref(),
        );
        c.api_resp_valid.append(r1 || r2 || r3);
        put(&mut c.api_operation, Some(&event_name));
        put(&mut c.api_version, rec.text(Field::ApiVersion).as_deref());
        put(&mut c.api_service_name, Some(&event_source));
        put(
            &mut c.api_req_data,
            request.map(|r| compact_json(r.get())).as_deref(),
        );
        // Security Lake writes the literal '' (two apostrophes) when there is no
        // requestID (ConsoleLogin), and api.request.uid is required by the schema.
        put(
            &mut c.api_req_uid,
            Some(rec.text(Field::RequestId).as_deref().unwrap_or("''")),
        );

        // dst_endpoint (Authentication): the console page signed in to, else the
        // service authenticated to — Authentication needs dst_endpoint or service.
        let dst = if class == OcsfClass::Authentication {
            Some(login_to.as_deref().unwrap_or(&event_source))
        } else {
            None
        };
        put(&mut c.dst_svc_name, dst);

        // actor
        let has_identity_user =
            ident.arn.is_some() || ident.account_id.is_some() || actor_name.is_some();
        let invoked_by = ident.obj.as_ref().and_then(|o| o.text("invokedBy"));
        // Validity: a user needs account, name or uid; AWSService identities carry only
        // a type (and invokedBy), so the invoking service is its name.
        let fallback_name: Option<Cow<str>> = if has_identity_user {
            None
        } else if ident.obj.is_some() || ident.user_type.is_some() {
            Some(
                invoked_by
                    .clone()
                    .or_else(|| ident.user_type.clone())
                    .unwrap_or(Cow::Borrowed("Unknown")),
            )
        } else {
            Some(Cow::Borrowed("Unknown"))
        };
        let user_type = ident.user_type.as_deref().or(if ident.obj.is_none() {
            Some("Unknown")
        } else {
            None
        });
        let mut any_user = put(&mut c.actor_user_type, user_type);
        any_user |= put(
            &mut c.actor_user_name,
            actor_name.as_deref().or(fallback_name.as_deref()),
        );
        any_user |= put(&mut c.actor_user_uid_alt, uid_alt.as_deref());
        any_user |= put(&mut c.actor_user_uid, ident.arn.as_deref());
        any_user |= put(&mut c.actor_user_account_uid, ident.account_id.as_deref());
        any_user |= put(&mut c.actor_user_credential_uid, credential.as_deref());
        c.actor_user_valid.append(any_user);
        c.actor_session_created.append_option(created_ms);
        c.actor_session_is_mfa.append_option(session_mfa);
        let s3 = put(&mut c.actor_session_issuer, issuer.as_deref());
        let any_session = created_ms.is_some() || session_mfa.is_some() || s3;
        c.actor_session_valid.append(any_session);
        let inv = put(&mut c.actor_invoked_by, invoked_by.as_deref());
        let idp = put(&mut c.actor_idp_name, idp_name.as_deref());
        c.actor_valid.append(any_user || any_session || inv || idp);
        put(
            &mut c.http_user_agent,
            rec.text(Field::UserAgent).as_deref(),
        );

        // src_endpoint: an IP literal is `ip`; anything else (a service principal,
        // "AWS Internal") is `domain`, as Security Lake writes it, plus `svc_name` so
        // the endpoint validates (domain is not in its at-least-one list).
        let source_ip = rec.text(Field::SourceIpAddress);
        let ip = source_ip.as_deref().filter(|s| s.parse::<IpAddr>().is_ok());
        let domain = if ip.is_none() {
            source_ip.as_deref()
        } else {
            None
        };
        let vpce = rec.text(Field::VpcEndpointId);
        let mut src_svc = domain;
        if class == OcsfClass::ApiActivity && source_ip.is_none() && vpce.is_none() {
            // API Activity requires src_endpoint; an event without a source address
            // comes from the service itself.
            src_svc = Some(&event_source);
        }
        let mut any_src = put(&mut c.src_uid, vpce.as_deref());
        any_src |= put(&mut c.src_ip, ip);
        any_src |= put(&mut c.src_domain, domain);
        any_src |= put(&mut c.src_svc_name, src_svc);
        c.src_valid.append(any_src);

        // class-specific: session, policy, user, status, is_mfa
        let mut target_uid: Option<Cow<str>> = None;
        let mut target_uid_alt: Option<Cow<str>> = None;
        let mut target_name: Option<Cow<str>> = None;
        let mut target_is_fallback = false;
        let mut sess = [None, None, None, None];
        let mut policy = None;
        let status: Cow<str> = match class {
            OcsfClass::Authentication => {
                target_uid = req_obj
                    .as_ref()
                    .and_then(|o| o.text("roleArn"))
                    .or_else(|| ident.arn.clone());
                target_uid_alt = ident.principal_id.clone();
                target_name = req_obj.as_ref().and_then(|o| o.text("roleSessionName"));
                if target_uid.is_none() && target_name.is_none() {
                    target_name = ident.user_name.clone();
                    if target_name.is_none() {
                        target_name = Some(Cow::Borrowed("Unknown"));
                        target_is_fallback = true;
                    }
                }
                if let Some(resp) = &resp_obj {
                    let aru = resp.object("assumedRoleUser");
                    sess[0] = aru.as_ref().and_then(|a| a.text("arn"));
                    sess[1] = aru.as_ref().and_then(|a| a.text("assumedRoleId"));
                    sess[2] = resp
                        .object("credentials")
                        .and_then(|c| c.text("accessKeyId"));
                    if sess.iter().any(Option::is_some) {
                        sess[3] = req_obj.as_ref().and_then(|o| o.text("roleArn"));
                    }
                }
                match resp_obj.as_ref().and_then(|r| r.text("ConsoleLogin")) {
                    Some(s) => s,
                    None if error_code.is_some() => Cow::Borrowed("Failure"),
                    // Security Lake quirk (spec §2.3): successful AssumeRole* and
                    // CheckMfa events get status "Other", not "Success".
                    None => Cow::Borrowed("Other"),
                }
            }
            OcsfClass::AccountChange => {
                // The account that changed: the user or role in the response, else the
                // one named in the request, else the caller (as the Security Lake
                // sample does: uid = the ARN, uid_alt = the id).
                if let Some(resp) = &resp_obj {
                    if let Some(u) = resp.object("user") {
                        target_uid = u.text("arn");
                        target_uid_alt = u.text("userId");
                        target_name = u.text("userName");
                    } else if let Some(r) = resp.object("role") {
                        target_uid = r.text("arn");
                        target_uid_alt = r.text("roleId");
                        target_name = r.text("roleName");
                    } else if let Some(k) = resp.object("accessKey") {
                        target_name = k.text("userName");
                    }
                }
                if target_name.is_none() {
                    target_name = req_obj
                        .as_ref()
                        .and_then(|o| o.text("userName").or_else(|| o.text("roleName")));
                }
                if target_uid.is_none() && target_name.is_none() {
                    target_uid = ident.arn.clone();
                    target_uid_alt = target_uid_alt.or_else(|| ident.principal_id.clone());
                    target_name = ident.user_name.clone();
                    if target_uid.is_none() && target_name.is_none() {
                        target_name = Some(Cow::Borrowed("Unknown"));
                        target_is_fallback = true;
                    }
                }
                policy = req_obj.as_ref().and_then(|o| o.text("policyArn"));
                Cow::Borrowed(if error_code.is_some() {
                    "Failure"
                } else {
                    "Success"
                })
            }
            OcsfClass::ApiActivity => Cow::Borrowed(if error_code.is_some() {
                "Failure"
            } else {
                "Success"
            }),
        };
        let mut any_sess = false;
        for (b, v) in [
            (&mut c.session_uid, &sess[0]),
            (&mut c.session_uid_alt, &sess[1]),
            (&mut c.session_credential_uid, &sess[2]),
            (&mut c.session_issuer, &sess[3]),
        ] {
            any_sess |= put(b, v.as_deref());
        }
        c.session_valid.append(any_sess);
        put(&mut c.policy_uid, policy.as_deref());

        // resources (API Activity)
        for (uid, account, rtype) in &resource_rows {
            c.res_uid.append_value(uid);
            c.res_owner_account.append_option(account.as_deref());
            c.res_type.append_option(rtype.as_deref());
        }
        c.res_offsets.push(c.res_uid.len() as i32);

        let mut any_target = put(&mut c.user_uid_alt, target_uid_alt.as_deref());
        any_target |= put(&mut c.user_uid, target_uid.as_deref());
        any_target |= put(&mut c.user_name, target_name.as_deref());
        c.user_valid.append(any_target);
        put(&mut c.status, Some(&status));
        c.is_mfa.append_option(mfa_used);

        // unmapped
        for (k, v) in self.unmapped.entries() {
            c.um_keys.append_value(k);
            c.um_values.append_value(v);
        }
        c.um_offsets.push(c.um_keys.len() as i32);
        put(&mut c.accountid, Some(&info.account));
        put(&mut c.region, Some(&info.region));

        // observables: IPs, host names, user names, resource ARNs.
        let mut obs = |name: &str, value: &str, (type_id, type_name): (i32, &str)| {
            c.obs_name.append_value(name);
            c.obs_value.append_value(value);
            c.obs_type.append_value(type_name);
            c.obs_type_id.append_value(type_id);
        };
        if let Some(ip) = ip {
            obs("src_endpoint.ip", ip, observable::IP_ADDRESS);
        }
        if let Some(d) = domain.filter(|d| hostname_like(d)) {
            obs("src_endpoint.domain", d, observable::HOSTNAME);
        }
        if let Some(n) = actor_name.as_deref() {
            obs("actor.user.name", n, observable::USER_NAME);
        }
        if let Some(n) = target_name.as_deref().filter(|_| !target_is_fallback) {
            obs("user.name", n, observable::USER_NAME);
        }
        for (uid, _, _) in &resource_rows {
            obs("resources[].uid", uid, observable::RESOURCE_UID);
        }
        c.obs_offsets.push(c.obs_name.len() as i32);

        Ok(info)
    }

    /// Reads `resources[]` for API Activity: elements with an ARN become resources;
    /// their other members, and elements without an ARN, go to `unmapped`.
    fn resources<'a>(
        &mut self,
        raw: RawJson<'a>,
        out: &mut Vec<Resource<'a>>,
    ) -> Result<(), MapError> {
        let unflat =
            |e: serde_json::Error| MapError::Unflattenable("resources".into(), e.to_string());
        let Ok(items) = serde_json::from_str::<Vec<&'a RawValue>>(raw.get()) else {
            return self.unmapped.flatten("resources", raw, &[]).map_err(unflat);
        };
        for item in items.into_iter().map(RawJson::from) {
            let Some(obj) = RawObject::parse(item) else {
                self.unmapped
                    .flatten("resources[]", item, &[])
                    .map_err(unflat)?;
                continue;
            };
            let arn = obj.text("ARN");
            let skip: &[&str] = if arn.is_some() {
                &["ARN", "accountId", "type"]
            } else {
                &[]
            };
            if let Some(arn) = arn {
                out.push((arn, obj.text("accountId"), obj.text("type")));
            }
            if !is_empty_value(item) {
                self.unmapped
                    .flatten("resources[]", item, skip)
                    .map_err(unflat)?;
            }
        }
        Ok(())
    }

    /// Builds lane 0's rows (all rows that [`append`](Self::append) took) into a
    /// batch of [`schema()`] and resets its builders.
    ///
    /// # Errors
    /// Only if the arrays disagree with the schema, which would be a bug.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.finish_lane(0)
    }

    /// Builds one lane's rows into a batch of [`schema()`] (empty for a lane never
    /// used) and resets its builders.
    ///
    /// # Errors
    /// Only if the arrays disagree with the schema, which would be a bug.
    pub fn finish_lane(&mut self, lane: usize) -> Result<RecordBatch, ArrowError> {
        let Some(l) = self.lanes.get_mut(lane) else {
            return Ok(RecordBatch::new_empty(schema()));
        };
        let batch = l.finish()?;
        self.rows -= batch.num_rows();
        Ok(batch)
    }
}

impl Lane {
    /// Empty builders, which allocate only when the first value arrives (a lane
    /// may get a few rows only).
    fn new() -> Self {
        let sb = || StringBuilder::with_capacity(0, 0);
        Lane {
            rows: 0,
            md_product_version: sb(),
            md_feature_name: sb(),
            md_event_code: sb(),
            md_uid: sb(),
            time: Vec::new(),
            cloud_region: sb(),
            api_resp_error: sb(),
            api_resp_message: sb(),
            api_resp_data: sb(),
            api_resp_valid: NullBufferBuilder::new(0),
            api_operation: sb(),
            api_version: sb(),
            api_service_name: sb(),
            api_req_data: sb(),
            api_req_uid: sb(),
            dst_svc_name: sb(),
            actor_user_type: sb(),
            actor_user_name: sb(),
            actor_user_uid_alt: sb(),
            actor_user_uid: sb(),
            actor_user_account_uid: sb(),
            actor_user_credential_uid: sb(),
            actor_user_valid: NullBufferBuilder::new(0),
            actor_session_created: TimestampMillisecondBuilder::with_capacity(0)
                .with_timezone(crate::schema::UTC),
            actor_session_is_mfa: BooleanBuilder::with_capacity(0),
            actor_session_issuer: sb(),
            actor_session_valid: NullBufferBuilder::new(0),
            actor_invoked_by: sb(),
            actor_idp_name: sb(),
            actor_valid: NullBufferBuilder::new(0),
            http_user_agent: sb(),
            src_uid: sb(),
            src_ip: sb(),
            src_domain: sb(),
            src_svc_name: sb(),
            src_valid: NullBufferBuilder::new(0),
            session_uid: sb(),
            session_uid_alt: sb(),
            session_credential_uid: sb(),
            session_issuer: sb(),
            session_valid: NullBufferBuilder::new(0),
            policy_uid: sb(),
            res_offsets: vec![0],
            res_uid: sb(),
            res_owner_account: sb(),
            res_type: sb(),
            class: Vec::new(),
            activity_id: Vec::new(),
            user_uid_alt: sb(),
            user_uid: sb(),
            user_name: sb(),
            user_valid: NullBufferBuilder::new(0),
            status: sb(),
            is_mfa: BooleanBuilder::with_capacity(0),
            um_offsets: vec![0],
            um_keys: sb(),
            um_values: sb(),
            accountid: sb(),
            region: sb(),
            obs_offsets: vec![0],
            obs_name: sb(),
            obs_value: sb(),
            obs_type: sb(),
            obs_type_id: Int32Builder::with_capacity(0),
        }
    }

    /// Builds the rows into a batch of [`schema()`] and resets the builders.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.rows;
        let schema = schema();
        let fields = |p: &str| -> Result<Fields, ArrowError> {
            struct_fields(p).ok_or_else(|| ArrowError::SchemaError(format!("no struct field {p}")))
        };
        fn st(
            fields: Fields,
            cols: Vec<ArrayRef>,
            nulls: Option<NullBuffer>,
        ) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(StructArray::try_new(fields, cols, nulls)?))
        }
        fn s(b: &mut StringBuilder) -> ArrayRef {
            Arc::new(b.finish())
        }
        fn constant(v: &str, n: usize) -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n)))
        }
        fn list_field(path: &str) -> Result<Arc<arrow_schema::Field>, ArrowError> {
            match crate::schema::field_at(path).map(|f| f.data_type().clone()) {
                Some(DataType::List(item)) => Ok(item),
                _ => Err(ArrowError::SchemaError(format!("{path} is not a list"))),
            }
        }
        fn offsets(v: &mut Vec<i32>) -> OffsetBuffer<i32> {
            let o = std::mem::replace(v, vec![0]);
            OffsetBuffer::new(ScalarBuffer::from(o))
        }
        fn list_nulls(offsets: &OffsetBuffer<i32>) -> Option<NullBuffer> {
            let valid: Vec<bool> = offsets.windows(2).map(|w| w[1] > w[0]).collect();
            let nb = NullBuffer::from(valid);
            (nb.null_count() > 0).then_some(nb)
        }

        // metadata
        let feature = st(
            fields("metadata.product.feature")?,
            vec![s(&mut self.md_feature_name)],
            None,
        )?;
        let product = st(
            fields("metadata.product")?,
            vec![
                s(&mut self.md_product_version),
                constant("CloudTrail", n),
                constant("AWS", n),
                feature,
            ],
            None,
        )?;
        let profile_values =
            StringArray::from_iter_values((0..n).flat_map(|_| ["cloud", "datetime"]));
        let profiles = Arc::new(ListArray::try_new(
            list_field("metadata.profiles")?,
            OffsetBuffer::from_lengths(std::iter::repeat_n(2, n)),
            Arc::new(profile_values),
            None,
        )?);
        let metadata = st(
            fields("metadata")?,
            vec![
                product,
                s(&mut self.md_event_code),
                s(&mut self.md_uid),
                profiles,
                constant(OCSF_VERSION, n),
            ],
            None,
        )?;
        let time = std::mem::take(&mut self.time);
        let time_dt: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(time.clone()).with_timezone(crate::schema::UTC),
        );
        let time: ArrayRef = Arc::new(Int64Array::from(time));
        let cloud = st(
            fields("cloud")?,
            vec![s(&mut self.cloud_region), constant("AWS", n)],
            None,
        )?;

        let response = st(
            fields("api.response")?,
            vec![
                s(&mut self.api_resp_error),
                s(&mut self.api_resp_message),
                s(&mut self.api_resp_data),
            ],
            self.api_resp_valid.finish(),
        )?;
        let service = st(
            fields("api.service")?,
            vec![s(&mut self.api_service_name)],
            None,
        )?;
        let request = st(
            fields("api.request")?,
            vec![s(&mut self.api_req_data), s(&mut self.api_req_uid)],
            None,
        )?;
        let api = st(
            fields("api")?,
            vec![
                response,
                s(&mut self.api_operation),
                s(&mut self.api_version),
                service,
                request,
            ],
            None,
        )?;
        let dst_svc = self.dst_svc_name.finish();
        let dst_nulls = dst_svc.nulls().cloned();
        let dst_endpoint = st(fields("dst_endpoint")?, vec![Arc::new(dst_svc)], dst_nulls)?;

        let account_uid = self.actor_user_account_uid.finish();
        let account_nulls = account_uid.nulls().cloned();
        let account = st(
            fields("actor.user.account")?,
            vec![Arc::new(account_uid)],
            account_nulls,
        )?;
        let user = st(
            fields("actor.user")?,
            vec![
                s(&mut self.actor_user_type),
                s(&mut self.actor_user_name),
                s(&mut self.actor_user_uid_alt),
                s(&mut self.actor_user_uid),
                account,
                s(&mut self.actor_user_credential_uid),
            ],
            self.actor_user_valid.finish(),
        )?;
        let session = st(
            fields("actor.session")?,
            vec![
                Arc::new(self.actor_session_created.finish()),
                Arc::new(self.actor_session_is_mfa.finish()),
                s(&mut self.actor_session_issuer),
            ],
            self.actor_session_valid.finish(),
        )?;
        let idp_name = self.actor_idp_name.finish();
        let idp_nulls = idp_name.nulls().cloned();
        let idp = st(fields("actor.idp")?, vec![Arc::new(idp_name)], idp_nulls)?;
        let actor = st(
            fields("actor")?,
            vec![user, session, s(&mut self.actor_invoked_by), idp],
            self.actor_valid.finish(),
        )?;
        let ua = self.http_user_agent.finish();
        let ua_nulls = ua.nulls().cloned();
        let http_request = st(fields("http_request")?, vec![Arc::new(ua)], ua_nulls)?;
        let src_endpoint = st(
            fields("src_endpoint")?,
            vec![
                s(&mut self.src_uid),
                s(&mut self.src_ip),
                s(&mut self.src_domain),
                s(&mut self.src_svc_name),
            ],
            self.src_valid.finish(),
        )?;
        let session_top = st(
            fields("session")?,
            vec![
                s(&mut self.session_uid),
                s(&mut self.session_uid_alt),
                s(&mut self.session_credential_uid),
                s(&mut self.session_issuer),
            ],
            self.session_valid.finish(),
        )?;
        let policy_uid = self.policy_uid.finish();
        let policy_nulls = policy_uid.nulls().cloned();
        let policy = st(fields("policy")?, vec![Arc::new(policy_uid)], policy_nulls)?;

        // resources
        let owner_account_uid = self.res_owner_account.finish();
        let oa_nulls = owner_account_uid.nulls().cloned();
        let owner_account = st(
            fields("resources.owner.account")?,
            vec![Arc::new(owner_account_uid)],
            oa_nulls.clone(),
        )?;
        let owner = st(fields("resources.owner")?, vec![owner_account], oa_nulls)?;
        let res_struct = st(
            fields("resources")?,
            vec![s(&mut self.res_uid), owner, s(&mut self.res_type)],
            None,
        )?;
        let res_offsets = offsets(&mut self.res_offsets);
        let res_nulls = list_nulls(&res_offsets);
        let resources = Arc::new(ListArray::try_new(
            list_field("resources")?,
            res_offsets,
            res_struct,
            res_nulls,
        )?);

        let classes = std::mem::take(&mut self.class);
        let activities = std::mem::take(&mut self.activity_id);
        let class_name: ArrayRef = Arc::new(StringArray::from_iter_values(
            classes.iter().map(|c| c.name()),
        ));
        let class_uid: ArrayRef = Arc::new(Int32Array::from_iter_values(
            classes.iter().map(|c| c.uid()),
        ));
        let category_name: ArrayRef = Arc::new(StringArray::from_iter_values(
            classes.iter().map(|c| c.category_name()),
        ));
        let category_uid: ArrayRef = Arc::new(Int32Array::from_iter_values(
            classes.iter().map(|c| c.category_uid()),
        ));
        let severity_id: ArrayRef =
            Arc::new(Int32Array::from_iter_values(std::iter::repeat_n(1, n)));
        let severity = constant("Informational", n);
        let user_top = st(
            fields("user")?,
            vec![
                s(&mut self.user_uid_alt),
                s(&mut self.user_uid),
                s(&mut self.user_name),
            ],
            self.user_valid.finish(),
        )?;
        let activity_name: ArrayRef = Arc::new(StringArray::from_iter_values(
            classes
                .iter()
                .zip(&activities)
                .map(|(c, a)| c.activity_name(*a)),
        ));
        let type_uid: ArrayRef = Arc::new(Int64Array::from_iter_values(
            classes
                .iter()
                .zip(&activities)
                .map(|(c, a)| i64::from(c.uid()) * 100 + i64::from(*a)),
        ));
        // A handful of (class, activity) pairs: name each once, not once per row.
        let mut type_names: Vec<(OcsfClass, i32, String)> = Vec::new();
        let mut type_name = StringBuilder::with_capacity(n, n * 24);
        for (c, a) in classes.iter().zip(&activities) {
            let i = match type_names.iter().position(|(tc, ta, _)| tc == c && ta == a) {
                Some(i) => i,
                None => {
                    let name = format!("{}: {}", c.name(), c.activity_name(*a));
                    type_names.push((*c, *a, name));
                    type_names.len() - 1
                }
            };
            type_name.append_value(&type_names[i].2);
        }
        let type_name: ArrayRef = Arc::new(type_name.finish());
        let activity_id: ArrayRef = Arc::new(Int32Array::from(activities));
        let is_mfa: ArrayRef = Arc::new(self.is_mfa.finish());

        // unmapped
        let DataType::Map(entries_field, _) =
            schema.field_with_name("unmapped")?.data_type().clone()
        else {
            return Err(ArrowError::SchemaError("unmapped is not a map".into()));
        };
        let DataType::Struct(kv_fields) = entries_field.data_type().clone() else {
            return Err(ArrowError::SchemaError(
                "map entries are not a struct".into(),
            ));
        };
        let entries = StructArray::try_new(
            kv_fields,
            vec![s(&mut self.um_keys), s(&mut self.um_values)],
            None,
        )?;
        let um_offsets = offsets(&mut self.um_offsets);
        let um_nulls = list_nulls(&um_offsets);
        let unmapped: ArrayRef = Arc::new(MapArray::try_new(
            entries_field,
            um_offsets,
            entries,
            um_nulls,
            false,
        )?);

        let asl_version: ArrayRef = Arc::new(StringArray::new_null(n));
        let obs_struct = st(
            fields("observables")?,
            vec![
                s(&mut self.obs_name),
                s(&mut self.obs_value),
                s(&mut self.obs_type),
                Arc::new(self.obs_type_id.finish()),
            ],
            None,
        )?;
        let obs_offsets = offsets(&mut self.obs_offsets);
        let obs_nulls = list_nulls(&obs_offsets);
        let observables = Arc::new(ListArray::try_new(
            list_field("observables")?,
            obs_offsets,
            obs_struct,
            obs_nulls,
        )?);

        self.rows = 0;
        let mut columns = vec![
            metadata,
            time,
            time_dt,
            cloud,
            api,
            dst_endpoint,
            actor,
            http_request,
            src_endpoint,
            session_top,
            policy,
            resources,
            class_name,
            class_uid,
            category_name,
            category_uid,
            severity_id,
            severity,
            user_top,
            activity_name,
            activity_id,
            type_uid,
            type_name,
            s(&mut self.status),
            is_mfa,
            unmapped,
            s(&mut self.accountid),
            s(&mut self.region),
            asl_version,
            observables,
        ];
        // Builders grow by doubling, and a lane's batch waits in its partition's
        // buffer until the partition is written: trim every buffer to its contents
        // (a realloc each) so the slack is neither held nor counted against the
        // memory bound all that time.
        for column in &mut columns {
            column.shrink_to_fit();
        }
        RecordBatch::try_new(schema, columns)
    }
}

#[cfg(test)]
mod tests {
    use super::compact_json;
    use std::borrow::Cow;

    #[test]
    fn compact_json_removes_only_insignificant_whitespace() {
        let compact = r#"{"a":[1,2],"s":"x y\t\"q\" \\","e":{}}"#;
        assert!(matches!(compact_json(compact), Cow::Borrowed(_)));
        let spaced = "{ \"a\" : [ 1 ,\n 2 ] ,\t\"s\" : \"x y\\t\\\"q\\\" \\\\\" , \"e\" : { } }";
        assert_eq!(compact_json(spaced), compact);
        let v: serde_json::Value = serde_json::from_str(spaced).unwrap();
        let w: serde_json::Value = serde_json::from_str(&compact_json(spaced)).unwrap();
        assert_eq!(v, w);
        assert_eq!(compact_json(" \"é ü\" "), "\"é ü\"");
        assert_eq!(compact_json(""), "");
        // Unterminated input (not produced by the parser) must not panic.
        assert_eq!(compact_json("\"abc\\"), "\"abc\\");
    }

    /// The plain byte-by-byte reading of the rule: whitespace outside strings goes.
    fn compact_reference(s: &str) -> String {
        let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
        for c in s.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
                continue;
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn compact_json_agrees_with_the_byte_by_byte_rule_on_any_text() {
        // Random texts over the characters that matter (quotes, escapes, each kind of
        // whitespace, structure, non-ASCII), valid JSON or not, short and long.
        const ALPHABET: [&str; 12] = [
            "\"", "\\", " ", "\t", "\n", "\r", "a", "{", ":", ",", "é", "0",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut borrowed, mut owned) = (0, 0);
        for round in 0..200_000 {
            // Mostly short texts of any mix. Every 100th is long, of letters and
            // quotes with a space or a backslash now and then and no tab or line
            // break (which would settle it at once), so that stretches of 64 bytes
            // and more (the quote count's block path) decide whether a space is
            // inside a string.
            let long = round % 100 == 0;
            let len = if long { 600 } else { (next() % 24) as usize };
            let text: String = (0..len)
                .map(|_| {
                    let r = next();
                    let pick = (r >> 8) as usize;
                    match (long, r % 40) {
                        (true, 0) => [" ", "\\"][pick % 2],
                        (true, _) => ["a", "\""][pick % 2],
                        (false, _) => ALPHABET[pick % ALPHABET.len()],
                    }
                })
                .collect();
            let got = compact_json(&text);
            assert_eq!(got, compact_reference(&text), "{text:?}");
            match got {
                Cow::Borrowed(_) => borrowed += 1,
                Cow::Owned(ref o) => {
                    // A raw tab or line break is copied even inside a string: JSON
                    // has none there, so only text the parser refuses gets this far.
                    let raw_control = text.contains(['\t', '\n', '\r']);
                    assert!(
                        o != &text || raw_control,
                        "copied although compact: {text:?}"
                    );
                    owned += 1;
                }
            }
        }
        assert!(
            borrowed > 10_000 && owned > 10_000,
            "{borrowed} borrowed, {owned} copied"
        );
    }
}
