-- CreateTable
CREATE TABLE "call_messages" (
    "id" UUID NOT NULL,
    "call_id" UUID NOT NULL,
    "participant_id" UUID,
    "user_id" VARCHAR(255) NOT NULL,
    "display_name" VARCHAR(255),
    "to_user_id" VARCHAR(255),
    "text" TEXT NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "call_messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "invitations" (
    "id" UUID NOT NULL,
    "call_id" UUID NOT NULL,
    "room_id" VARCHAR(255) NOT NULL,
    "user_id" VARCHAR(255) NOT NULL,
    "inviter_user_id" VARCHAR(255),
    "inviter_name" VARCHAR(255),
    "status" VARCHAR(20) NOT NULL,
    "reason" VARCHAR(200),
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMP(6) NOT NULL,
    "answered_at" TIMESTAMP(6),

    CONSTRAINT "invitations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "inbox_items" (
    "id" BIGSERIAL NOT NULL,
    "user_id" VARCHAR(255) NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMP(6) NOT NULL,
    "acked_at" TIMESTAMP(6),

    CONSTRAINT "inbox_items_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "call_messages_call_id_created_at_idx" ON "call_messages"("call_id", "created_at");

-- CreateIndex
CREATE INDEX "invitations_call_id_idx" ON "invitations"("call_id");

-- CreateIndex
CREATE INDEX "invitations_user_id_status_idx" ON "invitations"("user_id", "status");

-- CreateIndex
CREATE INDEX "inbox_items_user_id_id_idx" ON "inbox_items"("user_id", "id");

-- AddForeignKey
ALTER TABLE "call_messages" ADD CONSTRAINT "call_messages_call_id_fkey" FOREIGN KEY ("call_id") REFERENCES "calls"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "invitations" ADD CONSTRAINT "invitations_call_id_fkey" FOREIGN KEY ("call_id") REFERENCES "calls"("id") ON DELETE CASCADE ON UPDATE CASCADE;
