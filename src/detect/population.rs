//! The one account population every share is a share of. It used to be defined twice
//! (principals that are also accounts in enumeration, all accessed accounts in the report), so a
//! reason could read "115 % of customers", and on CloudTrail or Okta, where few principals are
//! accounts, "30000 %". Now: every account an access event names, computed once, so a share of
//! it never exceeds 100 %, and called "customer accounts" only where customers visibly use their
//! own tokens — elsewhere (IAM users, buckets, user names) it is "accounts".

use serde::Serialize;

use crate::reduce::Reach;

/// Accounts reached by their own token, as a share of all, above which the population is a
/// customer base: a gateway's customers read their own records; IAM users or Okta admins rarely
/// act on a target named like themselves.
const SELF_SERVED_SHARE: f64 = 0.05;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Population {
    /// Distinct accounts named by access events.
    pub accounts: u64,
    /// Of those, reached at least once by a principal with the account's own id.
    pub self_served: u64,
    pub customers: bool,
}

impl Population {
    pub fn of(reach: &Reach) -> Population {
        let accounts = reach.accounts();
        let self_served = reach.self_served();
        Population {
            accounts,
            self_served,
            customers: accounts > 0 && self_served as f64 >= SELF_SERVED_SHARE * accounts as f64,
        }
    }

    /// "customer accounts" or "accounts".
    pub fn noun(&self) -> &'static str {
        if self.customers {
            "customer accounts"
        } else {
            "accounts"
        }
    }

    /// `n` accounts as a share of the population (0–1; `n` counts accounts of the same rows).
    pub fn share(&self, n: u64) -> f64 {
        (n as f64 / self.accounts.max(1) as f64).min(1.0)
    }

    /// "3.2% of 45,000 customer accounts".
    pub fn percent_of(&self, n: u64) -> String {
        format!(
            "{:.1}% of {} {}",
            self.share(n) * 100.0,
            self.accounts,
            self.noun()
        )
    }

    /// How the population was derived, for the summary.
    pub fn derivation(&self) -> String {
        let kind = if self.customers {
            format!(
                "{} of them were reached by their own token (≥ {:.0}%), so they are called customer accounts",
                self.self_served,
                SELF_SERVED_SHARE * 100.0
            )
        } else {
            format!(
                "only {} of them were reached by their own token (< {:.0}%), so they are called accounts, not customers",
                self.self_served,
                SELF_SERVED_SHARE * 100.0
            )
        };
        format!(
            "{} distinct accounts named by access events (target_account); {kind}. Every share in this report is a share of this number.",
            self.accounts
        )
    }
}
