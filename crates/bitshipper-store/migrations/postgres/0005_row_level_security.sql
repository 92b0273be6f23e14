-- Row-level security: a second wall behind the application's tenant filters. The application's
-- queries run as bitshipper_app (every pooled connection runs SET ROLE bitshipper_app), which
-- owns nothing and so cannot bypass the policies. Each store call sets bitshipper.tenant_id for
-- its transaction; the few cross-tenant paths (authentication lookups, the processor, key
-- rotation) set bitshipper.all_tenants instead. A query that sets neither sees no rows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bitshipper_app') THEN
        CREATE ROLE bitshipper_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
EXCEPTION
    -- Another database on the same server made it at the same moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO bitshipper_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bitshipper_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bitshipper_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bitshipper_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO bitshipper_app;

CREATE FUNCTION bitshipper_row_visible(row_tenant UUID) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
    SELECT row_tenant = NULLIF(current_setting('bitshipper.tenant_id', true), '')::uuid
        OR current_setting('bitshipper.all_tenants', true) = 'on'
$$;

ALTER TABLE shipments ENABLE ROW LEVEL SECURITY;
ALTER TABLE shipments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON shipments USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE tracking_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE tracking_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON tracking_events USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON api_keys USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON idempotency_keys USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON audit_log USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON tenant_keys USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE recipient_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE recipient_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON recipient_keys USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON users USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON sessions USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON invitations USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));
