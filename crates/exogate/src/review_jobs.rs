//! (reviews) The worker's access-review job: starts the next campaign of every scheduled
//! campaign whose period is over (`ops::reviews::start_due_repeats`; on several replicas the
//! store lets exactly one start it) and reminds reviewers two days before a due date
//! (`ops::reviews::send_reminders`, once). Checked at most once a minute of the app's clock.

use exogate_core::Timestamp;
use exogate_core::ops;
use exogate_core::review::CampaignId;

use crate::app::App;

/// How often (app clock) the schedule is looked at.
const CHECK_EVERY_SECS: i64 = 60;

/// When the schedule was last looked at.
#[derive(Debug, Default)]
pub struct ReviewSchedule {
    last: Option<Timestamp>,
}

impl ReviewSchedule {
    pub async fn tick(&mut self, app: &App) {
        let now = app.clock.now();
        if self
            .last
            .is_some_and(|l| now.unix_millis() - l.unix_millis() < CHECK_EVERY_SECS * 1000)
        {
            return;
        }
        self.last = Some(now);
        let ids = || CampaignId::from_uuid(uuid::Uuid::now_v7());
        match ops::reviews::start_due_repeats(app.ctx(), &ids).await {
            Ok(started) => {
                for c in started {
                    tracing::info!(campaign = %c.id, "scheduled access review started");
                }
            }
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, "starting scheduled access reviews failed");
            }
        }
        if let Err(err) = ops::reviews::send_reminders(app.ctx()).await {
            tracing::warn!(code = err.code(), error = %err, "reminding access reviewers failed");
        }
    }
}
