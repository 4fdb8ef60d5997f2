-- The customer record: what erasure and retention need of tickets, and the lookups merges
-- and audits do by customer.

-- when a ticket's personal data was removed (a customer's erasure, or the retention policy);
-- its queue, status, channel and dates stay for the statistics
ALTER TABLE tickets ADD COLUMN erased_at timestamptz;

-- the retention pass: closed or resolved tickets not yet erased, oldest first
CREATE INDEX tickets_retention ON tickets ((coalesce(closed_at, resolved_at, updated_at)))
    WHERE erased_at IS NULL AND status IN ('resolved', 'closed');

CREATE INDEX customers_merged_into ON customers (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX customer_merges_source ON customer_merges (source_id);
CREATE INDEX customer_merges_target ON customer_merges (target_id);
