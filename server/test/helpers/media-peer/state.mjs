// The peer's state, shared by its modules: one peer per process, so one object.
export const S = {
  opts: null,
  socket: null,
  device: null,
  participantId: null,
  callId: null,
  send: null, // mediasoup-client send transport
  recv: null,
  transportState: { send: 'none', recv: 'none' },
  transportGen: 0,
  producers: new Map(), // source → { producer, kind, source, producedAt, paused }
  tracks: new Map(), // source → MediaStreamTrack (kept across media resets)
  consumers: new Map(), // consumer_id → entry (see consumeOne in consume.mjs)
  wanted: new Map(), // producer_id → ProducerInfo, known remote producers
  consumedProducers: new Set(), // producer ids consumed or being consumed in this transport generation
  remote: {}, // participant_id → { videoFrames, audioData }
  byProducer: {}, // producer_id → { videoFrames, audioData, firstFrameAt }
  queues: new Map(), // event → payload[]
  waiters: new Map(), // event → [{ resolve, timer }]
  timers: [],
  videoSource: null,
  audioSource: null,
  recovering: null,
};

/** The counters of `key` in `map` (S.remote or S.byProducer), created at zero. */
export function counters(map, key) {
  if (!map[key]) map[key] = { videoFrames: 0, audioData: 0, audioAudible: 0, firstFrameAt: null };
  return map[key];
}
