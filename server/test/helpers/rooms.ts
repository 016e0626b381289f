import type { ParticipantRecord, RoomRecord, RoomStore } from '../../rooms/store';

/** Records for RoomStore tests: a room, and a participant of a room on a node. */
export const roomRec = (room: string, mediaNode: string | null = null): RoomRecord => ({
  room,
  callId: `c-${room}`,
  status: 'active',
  recording: false,
  mode: 'sfu',
  createdAt: 0,
  removedUsers: [],
  mediaNode,
  emptySince: null,
});

export const participant = (id: string, room = 'r', nodeId = 'n1'): ParticipantRecord => ({
  id,
  room,
  userId: id,
  displayName: null,
  role: 'participant',
  tokenId: 't',
  canPublish: true,
  socketId: 's',
  capabilities: {},
  mutedTracks: [],
  lockedTracks: [],
  heldTracks: [],
  joinedAt: 0,
  clientIp: null,
  nodeId,
  disconnectedAt: null,
});

/** A copy in a stable order, for comparing what a store lists in no particular order. */
export const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

/** Room names with characters that a store must not read as structure (separators, globs, control characters). */
export const ODD_ROOM_NAMES = [
  'with space',
  'a:b:c',
  'room:x:p',
  'ünïcødé 会议室 🎉',
  'line\nbreak',
  'tab\there',
  'quote"back\\slash/',
  '\u0001\u001f\u007f',
  '*?[glob]',
  ']',
  'x'.repeat(128),
];

/** Room names that look like other rooms' keys once escaped, or their separators. */
export const LOOKALIKE_ROOM_NAMES = ['x', 'x:p', 'x:p:p', 'x%3Ap', 'x%253Ap', '%', '%25', ':', 'p'];

/** A room for each ODD_ROOM_NAMES name (media on m1), each with two participants on n1 whose ids are odd too; returns them. */
export async function putOddRooms(s: RoomStore): Promise<Array<{ room: string; id: string }>> {
  const members: Array<{ room: string; id: string }> = [];
  for (const [i, room] of ODD_ROOM_NAMES.entries()) {
    await s.putRoom(roomRec(room, 'm1'));
    for (const id of [`p${i}`, `id with\n"odd" ${room}`]) {
      await s.putParticipant(participant(id, room, 'n1'));
      members.push({ room, id });
    }
  }
  return members;
}

/** A room for each LOOKALIKE_ROOM_NAMES name, each with one participant `in <room>`. */
export async function putLookalikeRooms(s: RoomStore): Promise<void> {
  for (const room of LOOKALIKE_ROOM_NAMES) {
    await s.putRoom(roomRec(room));
    await s.putParticipant(participant(`in ${room}`, room));
  }
}

/** Rooms a and b with media on m1: p1 (on n1) and p2 (on n2) in a, p3 (on n1) in b. */
export async function putTwoRooms(s: RoomStore): Promise<void> {
  await s.putRoom(roomRec('a', 'm1'));
  await s.putRoom(roomRec('b', 'm1'));
  await s.putParticipant(participant('p1', 'a', 'n1'));
  await s.putParticipant(participant('p2', 'a', 'n2'));
  await s.putParticipant(participant('p3', 'b', 'n1'));
}
