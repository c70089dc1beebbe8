//! Draws templates and turns one [`Rec`] into JSON text plus its labels.

use crate::PartitionExpect;
use crate::actor::Ctx;
use crate::record::Rec;
use crate::rng::Rng;
use crate::templates::{TEMPLATES, Template};
use crate::time::event_day;
use crate::world::World;

/// Template drawing over a fixed world, with one reusable record.
pub(crate) struct Generator {
    pub world: World,
    /// Template weights where global (IAM) events may be drawn.
    weights_all: Vec<u32>,
    /// Template weights for other regions (global templates left out).
    weights_regional: Vec<u32>,
    pub rec: Rec,
}

impl Generator {
    pub(crate) fn new(world: World, large_payloads: bool) -> Self {
        let base: Vec<u32> = TEMPLATES
            .iter()
            .map(|t| {
                if t.large_only && !large_payloads {
                    0
                } else {
                    t.weight
                }
            })
            .collect();
        let regional = TEMPLATES
            .iter()
            .zip(&base)
            .map(|(t, &w)| if t.global { 0 } else { w })
            .collect();
        Generator {
            world,
            weights_all: base,
            weights_regional: regional,
            rec: Rec::new(),
        }
    }

    /// Builds one record of account `acct` in region `region` at `time` into
    /// [`Generator::rec`] and returns its template.
    pub(crate) fn build(
        &mut self,
        rng: &mut Rng,
        acct: usize,
        region: usize,
        time: i64,
    ) -> &'static Template {
        self.rec.reset();
        let global_ok = self.world.global_region.is_none_or(|g| g == region);
        let weights = if global_ok {
            &self.weights_all
        } else {
            &self.weights_regional
        };
        let t = &TEMPLATES[rng.weighted(weights)];
        let mut ctx = Ctx {
            rng,
            world: &self.world,
            acct: &self.world.accounts[acct],
            region: &self.world.regions[region],
            time,
        };
        (t.build)(&mut ctx, &mut self.rec);
        t
    }

    /// The partition the current record belongs to (`key_account`: the account of
    /// the object key, used when the record has no `recipientAccountId`).
    pub(crate) fn expect(&self, t: &Template, key_account: &str) -> PartitionExpect {
        let r = &self.rec;
        PartitionExpect {
            source: t.src.name().to_string(),
            class_uid: t.class.uid(),
            region: r.region.clone(),
            account: if r.recipient.on {
                r.recipient.s.clone()
            } else {
                key_account.to_string()
            },
            event_day: event_day(r.time),
        }
    }
}

/// How long before its delivery a record happened: mostly minutes, sometimes
/// hours (late delivery), which also pushes records into the previous day.
pub(crate) fn lag(rng: &mut Rng) -> i64 {
    match rng.weighted(&[95, 4, 1]) {
        0 => rng.range(20, 900) as i64,
        1 => rng.range(900, 3 * 3600) as i64,
        _ => rng.range(3 * 3600, 30 * 3600) as i64,
    }
}
