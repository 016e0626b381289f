-- tus uploads: the length may be deferred (Upload-Defer-Length), the whole-file SHA-256 is optional.
ALTER TABLE "client_uploads" ALTER COLUMN "size_bytes" DROP NOT NULL;
ALTER TABLE "client_uploads" ALTER COLUMN "sha256" DROP NOT NULL;
