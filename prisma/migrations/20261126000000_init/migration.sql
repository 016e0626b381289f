-- Initial schema. calls and participants follow the original design's SQL
-- (same columns and types); display_name, recordings and the indexes are added
-- for the product.

-- CreateTable
CREATE TABLE "calls" (
    "id" UUID NOT NULL,
    "room_id" VARCHAR(255) NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(6),
    "ended_at" TIMESTAMP(6),
    "status" VARCHAR(50) NOT NULL DEFAULT 'active',
    "recording" BOOLEAN NOT NULL DEFAULT false,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "calls_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "participants" (
    "id" UUID NOT NULL,
    "call_id" UUID NOT NULL,
    "user_id" VARCHAR(255) NOT NULL,
    "display_name" VARCHAR(255),
    "role" VARCHAR(50) NOT NULL DEFAULT 'participant',
    "joined_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "left_at" TIMESTAMP(6),
    "client_ip" INET,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "participants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "recordings" (
    "id" UUID NOT NULL,
    "call_id" UUID NOT NULL,
    "participant_id" UUID,
    "kind" VARCHAR(20) NOT NULL,
    "file_path" TEXT NOT NULL,
    "codec" VARCHAR(50),
    "size_bytes" BIGINT,
    "duration_ms" INTEGER,
    "status" VARCHAR(20) NOT NULL DEFAULT 'recording',
    "error" TEXT,
    "started_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMP(6),
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "recordings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "calls_room_id_idx" ON "calls"("room_id");

-- CreateIndex
CREATE INDEX "calls_status_created_at_idx" ON "calls"("status", "created_at");

-- At most one call per room that has not ended, enforced by the database so two
-- nodes cannot open the same room twice. (Prisma's schema language cannot express
-- partial indexes; this one lives only here.)
CREATE UNIQUE INDEX "calls_room_id_open_key" ON "calls"("room_id") WHERE "status" <> 'ended';

-- CreateIndex
CREATE INDEX "participants_call_id_idx" ON "participants"("call_id");

-- CreateIndex
CREATE INDEX "participants_user_id_idx" ON "participants"("user_id");

-- CreateIndex
CREATE INDEX "recordings_call_id_idx" ON "recordings"("call_id");

-- CreateIndex
CREATE INDEX "recordings_status_started_at_idx" ON "recordings"("status", "started_at");

-- AddForeignKey
ALTER TABLE "participants" ADD CONSTRAINT "participants_call_id_fkey" FOREIGN KEY ("call_id") REFERENCES "calls"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recordings" ADD CONSTRAINT "recordings_call_id_fkey" FOREIGN KEY ("call_id") REFERENCES "calls"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recordings" ADD CONSTRAINT "recordings_participant_id_fkey" FOREIGN KEY ("participant_id") REFERENCES "participants"("id") ON DELETE SET NULL ON UPDATE CASCADE;
