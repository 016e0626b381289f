-- A call's media mode: 'sfu' (through the server's mediasoup routers, the default) or 'p2p' (signaling relay only).

-- AlterTable
ALTER TABLE "calls" ADD COLUMN "mode" VARCHAR(10) NOT NULL DEFAULT 'sfu';
