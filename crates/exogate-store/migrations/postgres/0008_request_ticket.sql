-- (cli-requests) The PSA ticket a request belongs to: shown to the approver, not part of the
-- digest. Short printable text, validated by the core (`ops::requests::parse_ticket`).
ALTER TABLE approval_requests ADD COLUMN ticket TEXT;
