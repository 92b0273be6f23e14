-- The lake writer reads the shipments an applied log range touched (tracking_events.log_seq)
-- and tails predictions by the time they were scored.
CREATE INDEX tracking_events_log_seq ON tracking_events (log_seq);
CREATE INDEX predictions_scored_at ON predictions (scored_at);
