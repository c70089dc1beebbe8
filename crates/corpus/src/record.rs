//! One CloudTrail record being built: reusable buffers for every top-level field,
//! emitted in CloudTrail's own field order, with the fields a given
//! `eventVersion` did not have yet left out.

use crate::json::Json;
use crate::time::push_event_time;

/// The CloudTrail `eventCategory` of a record (and so its Security Lake source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Management,
    Data,
    NetworkActivity,
}

impl Category {
    fn as_str(self) -> &'static str {
        match self {
            Category::Management => "Management",
            Category::Data => "Data",
            Category::NetworkActivity => "NetworkActivity",
        }
    }
}

/// An optional string field with a reusable buffer.
#[derive(Default)]
pub(crate) struct Opt {
    pub on: bool,
    pub s: String,
    /// `s` is already escaped JSON string content (e.g. holds `\u00e9`).
    pub escaped: bool,
}

impl Opt {
    pub(crate) fn set(&mut self, v: &str) {
        self.on = true;
        self.escaped = false;
        self.s.clear();
        self.s.push_str(v);
    }

    /// Turns the field on with an empty buffer to append to.
    pub(crate) fn start(&mut self) -> &mut String {
        self.on = true;
        self.escaped = false;
        self.s.clear();
        &mut self.s
    }

    pub(crate) fn clear(&mut self) {
        self.on = false;
        self.escaped = false;
    }
}

/// An optional JSON-valued field: absent, `null`, or raw JSON text.
#[derive(Default)]
pub(crate) struct Frag {
    pub state: FragState,
    pub buf: String,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragState {
    #[default]
    Absent,
    Null,
    Json,
}

impl Frag {
    pub(crate) fn clear(&mut self) {
        self.state = FragState::Absent;
    }

    pub(crate) fn null(&mut self) {
        self.state = FragState::Null;
    }

    /// A writer for this field's JSON value (write exactly one value).
    pub(crate) fn json(&mut self) -> Json<'_> {
        self.state = FragState::Json;
        self.buf.clear();
        Json::new(&mut self.buf)
    }

    fn emit(&self, j: &mut Json<'_>, key: &str) {
        match self.state {
            FragState::Absent => {}
            FragState::Null => j.null(key),
            FragState::Json => j.raw(key, &self.buf),
        }
    }
}

/// How `eventTime` is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeMode {
    Normal,
    /// Written with `.123` milliseconds (valid, unusual).
    Millis(u16),
    /// Left out (hostile).
    Missing,
    /// Replaced by this text (hostile).
    Text(&'static str),
}

/// All top-level fields of one record.
pub(crate) struct Rec {
    pub minor: u8,
    pub ui: String,
    pub time: i64,
    pub time_mode: TimeMode,
    pub source: &'static str,
    pub name: &'static str,
    pub region: String,
    pub ip: Opt,
    pub ua: Opt,
    pub error_code: Option<&'static str>,
    pub error_message: Opt,
    pub req: Frag,
    pub resp: Frag,
    pub aed: Frag,
    pub request_id: Opt,
    pub event_id: String,
    pub omit_event_id: bool,
    pub read_only: Option<bool>,
    pub resources: Frag,
    pub event_type: &'static str,
    pub api_version: Option<&'static str>,
    pub category: Category,
    pub recipient: Opt,
    pub shared: Opt,
    pub vpce: Opt,
    pub vpce_account: Opt,
    pub service_details: Frag,
    pub tls: Frag,
    pub console: bool,
}

pub(crate) const VERSIONS: [&str; 12] = [
    "1.0", "1.01", "1.02", "1.03", "1.04", "1.05", "1.06", "1.07", "1.08", "1.09", "1.10", "1.11",
];

impl Rec {
    pub(crate) fn new() -> Self {
        Rec {
            minor: 8,
            ui: String::with_capacity(512),
            time: 0,
            time_mode: TimeMode::Normal,
            source: "",
            name: "",
            region: String::new(),
            ip: Opt::default(),
            ua: Opt::default(),
            error_code: None,
            error_message: Opt::default(),
            req: Frag::default(),
            resp: Frag::default(),
            aed: Frag::default(),
            request_id: Opt::default(),
            event_id: String::with_capacity(36),
            omit_event_id: false,
            read_only: None,
            resources: Frag::default(),
            event_type: "AwsApiCall",
            api_version: None,
            category: Category::Management,
            recipient: Opt::default(),
            shared: Opt::default(),
            vpce: Opt::default(),
            vpce_account: Opt::default(),
            service_details: Frag::default(),
            tls: Frag::default(),
            console: false,
        }
    }

    /// Resets every optional field (buffers are kept).
    pub(crate) fn reset(&mut self) {
        self.ui.clear();
        self.time_mode = TimeMode::Normal;
        self.ip.clear();
        self.ua.clear();
        self.error_code = None;
        self.error_message.clear();
        self.req.clear();
        self.resp.clear();
        self.aed.clear();
        self.request_id.clear();
        self.event_id.clear();
        self.omit_event_id = false;
        self.read_only = None;
        self.resources.clear();
        self.event_type = "AwsApiCall";
        self.api_version = None;
        self.category = Category::Management;
        self.recipient.clear();
        self.shared.clear();
        self.vpce.clear();
        self.vpce_account.clear();
        self.service_details.clear();
        self.tls.clear();
        self.console = false;
    }

    fn opt(j: &mut Json<'_>, key: &str, o: &Opt) {
        if o.on {
            if o.escaped {
                j.str_escaped(key, &o.s);
            } else {
                j.str(key, &o.s);
            }
        }
    }

    /// Appends the record as compact JSON to `out`.
    pub(crate) fn emit(&self, out: &mut String) {
        let v = self.minor;
        let mut j = Json::new(out);
        j.open();
        j.str("eventVersion", VERSIONS[v as usize]);
        j.raw("userIdentity", &self.ui);
        match self.time_mode {
            TimeMode::Normal => {
                j.key("eventTime");
                let b = j.buf();
                b.push('"');
                push_event_time(b, self.time);
                b.push('"');
                j.done();
            }
            TimeMode::Millis(ms) => {
                j.key("eventTime");
                let b = j.buf();
                b.push('"');
                push_event_time(b, self.time);
                b.pop();
                b.push('.');
                let ms = ms.min(999) as u32;
                for d in [ms / 100, ms / 10 % 10, ms % 10] {
                    b.push((b'0' + d as u8) as char);
                }
                b.push_str("Z\"");
                j.done();
            }
            TimeMode::Missing => {}
            TimeMode::Text(t) => j.str("eventTime", t),
        }
        j.str("eventSource", self.source);
        j.str("eventName", self.name);
        j.str("awsRegion", &self.region);
        Self::opt(&mut j, "sourceIPAddress", &self.ip);
        Self::opt(&mut j, "userAgent", &self.ua);
        if let Some(code) = self.error_code {
            j.str("errorCode", code);
        }
        Self::opt(&mut j, "errorMessage", &self.error_message);
        self.req.emit(&mut j, "requestParameters");
        self.resp.emit(&mut j, "responseElements");
        self.aed.emit(&mut j, "additionalEventData");
        Self::opt(&mut j, "requestID", &self.request_id);
        if !self.omit_event_id {
            j.str("eventID", &self.event_id);
        }
        if let Some(ro) = self.read_only
            && v >= 1
        {
            j.bool("readOnly", ro);
        }
        self.resources.emit(&mut j, "resources");
        j.str("eventType", self.event_type);
        if let Some(api) = self.api_version {
            j.str("apiVersion", api);
        }
        if v >= 6 {
            j.bool("managementEvent", self.category == Category::Management);
        }
        Self::opt(&mut j, "recipientAccountId", &self.recipient);
        Self::opt(&mut j, "sharedEventID", &self.shared);
        Self::opt(&mut j, "vpcEndpointId", &self.vpce);
        if v >= 9 {
            Self::opt(&mut j, "vpcEndpointAccountId", &self.vpce_account);
        }
        self.service_details.emit(&mut j, "serviceEventDetails");
        if v >= 7 {
            j.str("eventCategory", self.category.as_str());
        }
        if v >= 8 {
            self.tls.emit(&mut j, "tlsDetails");
            if self.console {
                j.str("sessionCredentialFromConsole", "true");
            }
        }
        j.close();
    }
}
