-- Room on each page for a message's next version: a delivery status (queued, sent,
-- delivered, read) rewrites the row soon after it is written, and an update that changes no
-- indexed column and finds room on its page is HOT: no new entry in any of the table's four
-- indexes (the GIN search index among them). At the default 100 nearly every status was a
-- full new entry in each (issue 16). Applies to pages filled from now on.
ALTER TABLE messages SET (fillfactor = 85);
