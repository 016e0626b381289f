-- Recording files belong to a recording session (the recording_id of the signaling
-- events), are numbered by segment when ffmpeg restarts, and carry their MIME type.

-- AlterTable
ALTER TABLE "recordings" ADD COLUMN "session_id" UUID NOT NULL,
ADD COLUMN "segment" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "mime_type" VARCHAR(50) NOT NULL DEFAULT 'video/webm';

-- CreateIndex
CREATE INDEX "recordings_session_id_idx" ON "recordings"("session_id");
