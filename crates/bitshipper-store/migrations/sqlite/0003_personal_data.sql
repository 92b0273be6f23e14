-- Personal data sealed at rest (envelope encryption) and erasure markers.
-- Tenant keys: version 0 is the tenant's search key (keyed hashes of emails), versions 1.. are
-- data keys; each is wrapped by a key-encryption key from the KeyProvider (kek_id says which).
CREATE TABLE tenant_keys (
    tenant_id    BLOB NOT NULL,
    version      INTEGER NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- One data key per recipient, wrapped by a tenant data key. Deleting a row shreds everything
-- sealed under it. recipient_ref is a keyed hash of the email, or 'shp:<shipment id>'.
CREATE TABLE recipient_keys (
    tenant_id    BLOB NOT NULL,
    recipient_ref TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, recipient_ref)
);

ALTER TABLE shipments ADD COLUMN recipient_ref TEXT;
ALTER TABLE shipments ADD COLUMN recipient_sealed BLOB;
ALTER TABLE shipments ADD COLUMN recipient_erased_at TEXT;
CREATE INDEX shipments_tenant_recipient ON shipments (tenant_id, recipient_ref);

ALTER TABLE tenants ADD COLUMN erased_at TEXT;
