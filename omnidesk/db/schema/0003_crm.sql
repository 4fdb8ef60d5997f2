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

-- Once a ticket is erased, what the records writer writes of it later (a snapshot read before
-- the erasure, an event still in the stream) cannot bring its personal data back: the
-- ticket's text columns stay blank and its events lose their free-text fields. The list of
-- fields is omnidesk.db.erasure.PERSONAL_EVENT_FIELDS.
CREATE FUNCTION od_erased_ticket_stays_blank() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.subject := '';
    NEW.preview := '';
    NEW.cr_number := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_erased_stay_blank BEFORE UPDATE ON tickets
    FOR EACH ROW WHEN (OLD.erased_at IS NOT NULL) EXECUTE FUNCTION od_erased_ticket_stays_blank();

CREATE FUNCTION od_erased_ticket_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tickets WHERE id = NEW.ticket_id AND erased_at IS NOT NULL) THEN
        NEW.data := NEW.data - ARRAY['comment', 'reason', 'text', 'subject', 'name', 'email',
                                     'phone', 'delivery', 'error', 'address', 'identity'];
    END IF;
    RETURN NEW;
END $$;
-- only events that carry such a field pay for the lookup
CREATE TRIGGER events_of_erased_tickets BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.ticket_id IS NOT NULL AND NEW.data ?| ARRAY['comment', 'reason',
        'text', 'subject', 'name', 'email', 'phone', 'delivery', 'error', 'address', 'identity'])
    EXECUTE FUNCTION od_erased_ticket_event();
