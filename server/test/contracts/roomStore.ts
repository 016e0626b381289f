import type { RoomStore } from '../../rooms/store';
import { LOOKALIKE_ROOM_NAMES, ODD_ROOM_NAMES, participant, putLookalikeRooms, putOddRooms, putTwoRooms, roomRec, sorted } from '../helpers/rooms';

/**
 * What every RoomStore does, written once and declared for each
 * implementation (InMemoryRoomStore, RedisRoomStore: room-store.test.ts).
 * `open` gives a store holding nothing, for one test. What only one
 * implementation shows (Redis keys, round trips) is tested beside it.
 */
export function describeRoomStore(name: string, open: () => RoomStore | Promise<RoomStore>): void {
  describe(`${name} (the RoomStore contract)`, () => {
    it('copies records in and out, counts, and deletes rooms with their participants', async () => {
      const s = await open();
      await s.putRoom({
        room: 'r',
        callId: 'c',
        status: 'active',
        recording: false,
        mode: 'sfu',
        createdAt: 0,
        removedUsers: [],
        mediaNode: null,
        emptySince: null,
      });
      const p = participant('p1');
      await s.putParticipant(p);
      p.mutedTracks.push('audio');
      expect((await s.getParticipant('r', 'p1'))?.mutedTracks).toEqual([]);
      const out = (await s.getParticipant('r', 'p1'))!;
      out.heldTracks.push('video');
      expect((await s.getParticipant('r', 'p1'))?.heldTracks).toEqual([]);
      await s.putParticipant(participant('p2'));
      expect(await s.countParticipants('r')).toBe(2);
      expect(await s.countAllParticipants()).toBe(2);
      await s.deleteRoom('r');
      expect(await s.countRooms()).toBe(0);
      expect(await s.countAllParticipants()).toBe(0);
      await expect(s.putParticipant(participant('p3'))).rejects.toThrow(/does not exist/);
    });

    it('copies nested capabilities in and out', async () => {
      const s = await open();
      await s.putRoom(roomRec('r'));
      const p = { ...participant('p1'), capabilities: { audio: true, nested: { a: [1, 2] } } };
      await s.putParticipant(p);
      (p.capabilities.nested as { a: number[] }).a.push(3);
      const out = (await s.getParticipant('r', 'p1'))!;
      expect(out.capabilities).toEqual({ audio: true, nested: { a: [1, 2] } });
      (out.capabilities.nested as { a: number[] }).a.push(4);
      expect((await s.getParticipant('r', 'p1'))?.capabilities).toEqual({ audio: true, nested: { a: [1, 2] } });
    });

    it('copies room records in and out and returns undefined for what is missing', async () => {
      const s = await open();
      expect(await s.getRoom('r')).toBeUndefined();
      expect(await s.getParticipant('r', 'p1')).toBeUndefined();
      expect(await s.listParticipants('r')).toEqual([]);
      expect(await s.countParticipants('r')).toBe(0);
      expect(await s.countAllParticipants()).toBe(0);
      const rec = roomRec('r');
      await s.putRoom(rec);
      rec.removedUsers.push('u1');
      rec.status = 'ended';
      expect(await s.getRoom('r')).toEqual(roomRec('r'));
      const out = (await s.getRoom('r'))!;
      out.removedUsers.push('u2');
      expect((await s.getRoom('r'))?.removedUsers).toEqual([]);
      await s.putRoom({ ...roomRec('r'), removedUsers: ['u3'], emptySince: 42 });
      expect(await s.getRoom('r')).toEqual({ ...roomRec('r'), removedUsers: ['u3'], emptySince: 42 });
      expect(await s.countRooms()).toBe(1);
    });

    it('keeps role changes with the room, as copies', async () => {
      const s = await open();
      await s.putRoom({ ...roomRec('r'), roleChanges: { u1: 'participant' } });
      const out = (await s.getRoom('r'))!;
      expect(out.roleChanges).toEqual({ u1: 'participant' });
      out.roleChanges!.u2 = 'moderator';
      expect((await s.getRoom('r'))?.roleChanges).toEqual({ u1: 'participant' });
    });

    it('rejects putParticipant into a missing room and writes nothing', async () => {
      const s = await open();
      await expect(s.putParticipant(participant('p1', 'nope'))).rejects.toThrow('room nope does not exist');
      expect(await s.countAllParticipants()).toBe(0);
      expect(await s.participantsOnNode('n1')).toEqual([]);
    });

    it('counts per room and across rooms, without counting a re-put twice', async () => {
      const s = await open();
      await s.putRoom(roomRec('a'));
      await s.putRoom(roomRec('b'));
      await s.putParticipant(participant('p1', 'a'));
      await s.putParticipant(participant('p2', 'a'));
      await s.putParticipant(participant('p1', 'b'));
      await s.putParticipant({ ...participant('p1', 'a'), mutedTracks: ['audio'] });
      await s.putParticipant({ ...participant('p1', 'a'), socketId: null, disconnectedAt: 5 });
      expect(await s.countParticipants('a')).toBe(2);
      expect(await s.countParticipants('b')).toBe(1);
      expect(await s.countAllParticipants()).toBe(3);
      expect(await s.countRooms()).toBe(2);
      expect(await s.getParticipant('a', 'p1')).toEqual({ ...participant('p1', 'a'), socketId: null, disconnectedAt: 5 });
      // Re-putting a room keeps its participants.
      await s.putRoom({ ...roomRec('a'), recording: true });
      expect(await s.countParticipants('a')).toBe(2);
      expect(await s.countRooms()).toBe(2);
    });

    it('deletes participants, keeping the counter and the node index exact', async () => {
      const s = await open();
      await s.putRoom(roomRec('r'));
      await s.putParticipant(participant('p1'));
      await s.putParticipant(participant('p2'));
      await s.deleteParticipant('r', 'p1');
      await s.deleteParticipant('r', 'p1'); // already gone: no double decrement
      await s.deleteParticipant('r', 'ghost');
      await s.deleteParticipant('missing-room', 'p2');
      expect(await s.getParticipant('r', 'p1')).toBeUndefined();
      expect((await s.listParticipants('r')).map((p) => p.id)).toEqual(['p2']);
      expect(await s.countParticipants('r')).toBe(1);
      expect(await s.countAllParticipants()).toBe(1);
      expect(await s.participantsOnNode('n1')).toEqual([{ room: 'r', id: 'p2' }]);
    });

    it('deleteRoom removes the participants and fixes the counter and the indexes', async () => {
      const s = await open();
      await putTwoRooms(s);
      await s.deleteRoom('a');
      expect(await s.getRoom('a')).toBeUndefined();
      expect(await s.listParticipants('a')).toEqual([]);
      expect(await s.countParticipants('a')).toBe(0);
      expect(await s.countAllParticipants()).toBe(1);
      expect(await s.countRooms()).toBe(1);
      expect(await s.listRooms()).toEqual(['b']);
      expect(await s.participantsOnNode('n1')).toEqual([{ room: 'b', id: 'p3' }]);
      expect(await s.participantsOnNode('n2')).toEqual([]);
      expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
      await s.deleteRoom('a'); // already gone: a no-op
      expect(await s.countAllParticipants()).toBe(1);
      // A room deleted before being re-created starts empty.
      await s.putRoom(roomRec('a'));
      expect(await s.countParticipants('a')).toBe(0);
      await s.deleteRoom('a');
      await s.deleteRoom('b');
      expect(await s.countAllParticipants()).toBe(0);
      expect(await s.countRooms()).toBe(0);
    });

    it('participantsOnNode follows nodeId changes', async () => {
      const s = await open();
      await s.putRoom(roomRec('a'));
      await s.putRoom(roomRec('b'));
      await s.putParticipant(participant('p1', 'a', 'n1'));
      await s.putParticipant(participant('p2', 'a', 'n1'));
      await s.putParticipant(participant('p1', 'b', 'n2'));
      expect(sorted(await s.participantsOnNode('n1'))).toEqual([
        { room: 'a', id: 'p1' },
        { room: 'a', id: 'p2' },
      ]);
      expect(await s.participantsOnNode('n2')).toEqual([{ room: 'b', id: 'p1' }]);
      // p1 of room a reconnects through n2, then n3, then back to n1.
      await s.putParticipant(participant('p1', 'a', 'n2'));
      expect(await s.participantsOnNode('n1')).toEqual([{ room: 'a', id: 'p2' }]);
      expect(sorted(await s.participantsOnNode('n2'))).toEqual([
        { room: 'a', id: 'p1' },
        { room: 'b', id: 'p1' },
      ]);
      await s.putParticipant(participant('p1', 'a', 'n3'));
      expect(await s.participantsOnNode('n2')).toEqual([{ room: 'b', id: 'p1' }]);
      expect(await s.participantsOnNode('n3')).toEqual([{ room: 'a', id: 'p1' }]);
      await s.putParticipant(participant('p1', 'a', 'n1'));
      expect(await s.participantsOnNode('n3')).toEqual([]);
      expect(sorted(await s.participantsOnNode('n1'))).toEqual([
        { room: 'a', id: 'p1' },
        { room: 'a', id: 'p2' },
      ]);
      expect(await s.participantsOnNode('nobody')).toEqual([]);
      expect(await s.countAllParticipants()).toBe(3);
    });

    it('roomsWithMediaOn follows mediaNode changes (to and from null) and deleteRoom', async () => {
      const s = await open();
      await s.putRoom(roomRec('a', null));
      await s.putRoom(roomRec('b', 'm1'));
      expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
      await s.putRoom(roomRec('a', 'm1'));
      expect(sorted(await s.roomsWithMediaOn('m1'))).toEqual(['a', 'b']);
      await s.putRoom(roomRec('a', 'm2'));
      expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
      expect(await s.roomsWithMediaOn('m2')).toEqual(['a']);
      await s.putRoom(roomRec('a', null));
      expect(await s.roomsWithMediaOn('m2')).toEqual([]);
      await s.putRoom(roomRec('b', 'm1')); // unchanged
      expect(await s.roomsWithMediaOn('m1')).toEqual(['b']);
      await s.deleteRoom('b');
      expect(await s.roomsWithMediaOn('m1')).toEqual([]);
    });

    it('lists rooms', async () => {
      const s = await open();
      expect(await s.listRooms()).toEqual([]);
      await s.putRoom(roomRec('a'));
      await s.putRoom(roomRec('b'));
      await s.putRoom(roomRec('a'));
      expect(sorted(await s.listRooms())).toEqual(['a', 'b']);
      expect(await s.countRooms()).toBe(2);
    });

    it('handles room names and ids with odd characters', async () => {
      const s = await open();
      const odd = ODD_ROOM_NAMES;
      const expected = await putOddRooms(s);
      // With raw names in keys, the record of 'room:x:p' would be the participants hash of 'room:x'.
      await s.putRoom(roomRec('room:x'));
      expect(await s.countParticipants('room:x')).toBe(0);
      expect(await s.countRooms()).toBe(odd.length + 1);
      expect(sorted(await s.listRooms())).toEqual(sorted([...odd, 'room:x']));
      expect(sorted(await s.roomsWithMediaOn('m1'))).toEqual(sorted(odd));
      expect(sorted(await s.participantsOnNode('n1'))).toEqual(sorted(expected));
      for (const { room, id } of expected) expect((await s.getParticipant(room, id))?.room).toBe(room);
      expect(await s.countAllParticipants()).toBe(2 * odd.length);
      // Moving and deleting work with them too.
      await s.putParticipant(participant('p0', odd[0]!, 'n2'));
      expect(await s.participantsOnNode('n2')).toEqual([{ room: odd[0], id: 'p0' }]);
      for (const room of odd) await s.deleteRoom(room);
      expect(await s.participantsOnNode('n1')).toEqual([]);
      expect(await s.participantsOnNode('n2')).toEqual([]);
      expect(await s.roomsWithMediaOn('m1')).toEqual([]);
      expect(await s.countAllParticipants()).toBe(0);
      expect(await s.listRooms()).toEqual(['room:x']);
    });

    it("keeps rooms whose names look like other rooms' keys apart", async () => {
      const s = await open();
      const names = LOOKALIKE_ROOM_NAMES;
      await putLookalikeRooms(s);
      for (const room of names) {
        expect((await s.getRoom(room))?.callId).toBe(`c-${room}`);
        expect((await s.listParticipants(room)).map((p) => p.id)).toEqual([`in ${room}`]);
      }
      expect(await s.countAllParticipants()).toBe(names.length);
      await s.deleteRoom('x');
      for (const room of names.slice(1)) expect(await s.countParticipants(room)).toBe(1);
    });
  });
}
