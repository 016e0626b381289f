-- The node whose ffmpeg writes a recording file (NODE_ID, at most 64 characters): when
-- that node dies, or restarts after a crash, crash recovery knows which files it left
-- open. Null for rows written before this column existed.

-- AlterTable
ALTER TABLE "recordings" ADD COLUMN "node_id" VARCHAR(64);
