-- Search (omnidesk.db.search): free text through this GIN index on the folded, stemmed words
-- of each message (omnidesk.db.searchtext). Ticket ids, identities and CR numbers already
-- have their btree indexes in 0001 (tickets' primary key, identities' (kind, value),
-- tickets_cr_number), and a ticket's messages are found by messages_ticket.
CREATE INDEX messages_search ON messages USING gin (search);
