//! The pure parts of `hpa-tier simulate`: the users trace, time in a
//! replay (its span, the applied and served tier timelines with the
//! `--ready` rule), the replay loop that runs the decision `check` makes at
//! every tick, the scores against the oracle and static baselines, and the
//! SVG chart. The binary reads the trace (or the store) and writes the
//! chart; these modules only turn values into values and strings.

pub mod chart;
pub mod replay;
pub mod score;
pub mod timeline;
pub mod trace;

pub use chart::{Chart, Window};
pub use replay::{Replayed, Replayer, Setup, TierChange, replay};
pub use score::{Replay, Scores, Summary};
pub use timeline::{Span, SpanError, Step, Timeline};
pub use trace::{Trace, TraceError};
