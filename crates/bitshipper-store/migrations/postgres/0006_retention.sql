-- Per-tenant retention: how long tracking events and personal data are kept after a shipment's
-- last activity (NULL: kept until erased). Enforced by the scheduled housekeeping job.
ALTER TABLE tenants ADD COLUMN retain_events_days INTEGER;
ALTER TABLE tenants ADD COLUMN retain_personal_data_days INTEGER;
