using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>The RDB opcodes and value types of Redis (rdb.h), as far as this server reads or writes them.</summary>
internal static class Rdb
{
    /// <summary>The RDB version written (redis-server 7.0's RDB_VERSION).</summary>
    public const int Version = 10;

    /// <summary>The newest RDB version read (redis 7.2's 11: its set listpacks and stream consumers' active time).</summary>
    public const int MaxReadVersion = 11;

    public const byte TypeString = 0, TypeList = 1, TypeSet = 2, TypeZSet = 3, TypeHash = 4, TypeZSet2 = 5, TypeModule = 6, TypeModule2 = 7,
        TypeHashZipmap = 9, TypeListZiplist = 10, TypeSetIntset = 11, TypeZSetZiplist = 12, TypeHashZiplist = 13, TypeListQuicklist = 14,
        TypeStreamListpacks = 15, TypeHashListpack = 16, TypeZSetListpack = 17, TypeListQuicklist2 = 18, TypeStreamListpacks2 = 19,
        TypeSetListpack = 20, TypeStreamListpacks3 = 21;

    public const byte OpFunction2 = 245, OpFunction = 246, OpModuleAux = 247, OpIdle = 248, OpFreq = 249, OpAux = 250, OpResizeDb = 251,
        OpExpireTimeMs = 252, OpExpireTime = 253, OpSelectDb = 254, OpEof = 255;

    public const byte StreamItemFlagDeleted = 1, StreamItemFlagSameFields = 2;
}

/// <summary>Writes an RDB file (version 10, as redis-server 7.0 writes it) from a keyspace snapshot.</summary>
/// <remarks>
/// <para><b>Encodings</b>: strings as Redis saves them (integers of at most 11 characters that fit 32 bits in the integer
/// encodings; with <c>rdbcompression</c> strings over 20 bytes LZF-compressed when that saves at least 4 bytes, as
/// rdbSaveRawString with redis's own lzf_compress, string values sampled once LZF gave up on 16 in a row
/// (<see cref="LzfSampling"/>); other strings raw); lists, sets and hashes in the
/// plain encodings (<c>RDB_TYPE_LIST</c>, <c>RDB_TYPE_SET</c>, <c>RDB_TYPE_HASH</c>: a length and the elements, which
/// redis-server 7.0 still loads and converts to its compact encodings itself); sorted sets as <c>RDB_TYPE_ZSET_2</c>
/// (binary doubles); streams as <c>RDB_TYPE_STREAM_LISTPACKS_2</c> with Redis's listpack nodes, consumer groups, the
/// groups' PELs with delivery times and counts, and the consumers' PELs. FUNCTION libraries as <c>RDB_OPCODE_FUNCTION2</c>.</para>
/// <para>The bytes go to <paramref name="sink"/> in chunks of about 1 MiB; the CRC-64 footer covers all of them.</para>
/// </remarks>
/// <param name="sink">Receives the file's bytes in order.</param>
/// <param name="compress">Redis's <c>rdbcompression</c>: LZF-compress strings over 20 bytes.</param>
/// <param name="checksum">Redis's <c>rdbchecksum</c>: false writes 0 as the CRC-64 footer (and computes none).</param>
/// <param name="bufferBytes">The buffer's first size: a whole file's writer (<see cref="KvRdb.Write"/>) takes its chunk
/// size, 1 MiB, so the buffer never grows (it flushes before a piece that does not fit); DUMP's one value, 64 KiB.</param>
internal sealed class RdbWriter(Action<ReadOnlySpan<byte>> sink, bool compress = true, bool checksum = true, int bufferBytes = 64 * 1024)
{
    private const int ChunkBytes = 1 << 20;
    private const int MinCompressLength = 21; // rdbSaveRawString: "under 20 bytes it's unable to compress even aaaaaaaaaaaaaaaaaa"

    private RdbBlobs.LzfState? _lzf;
    private byte[]? _lzfOutput;
    private bool _lastGaveUpByBound, _valueGaveUpByBound;
    private LzfOutcome _lastLzf;

    // Adaptive compression of string values (issue 14, h176; what btrfs and ZFS do for blocks): after
    // LzfMissesBeforeSampling tries in a row that LZF gave up on, the next values are written raw without trying, LzfFirstSkip
    // of them, then one is tried (a probe); each probe LZF gives up on doubles the run written raw, up to LzfMaxSkip; a
    // value that compresses (a probe or any try) ends the sampling. Values an earlier snapshot proved incompressible
    // (KvSnapshotLease) neither count nor end it. EIOSHARP_KV_RDB_LZF_SAMPLING=0 turns it off (A/B measurements).
    internal const int LzfMissesBeforeSampling = 16, LzfFirstSkip = 16, LzfMaxSkip = 128;
    private int _lzfMisses, _lzfSkip, _lzfSkipLeft;

    /// <summary>The default of <see cref="LzfSampling"/>: on unless EIOSHARP_KV_RDB_LZF_SAMPLING=0.</summary>
    internal static readonly bool DefaultLzfSampling = Environment.GetEnvironmentVariable("EIOSHARP_KV_RDB_LZF_SAMPLING") != "0";

    /// <summary>Whether this writer samples LZF on string values once the tries give up (<see cref="LzfSampledOut"/>).</summary>
    internal bool LzfSampling { get; init; } = DefaultLzfSampling;

    /// <summary>String values written raw without trying LZF because the tries before them gave up (adaptive compression).</summary>
    public long LzfSampledOut { get; private set; }

    private enum LzfOutcome : byte { NotTried, Compressed, GaveUp }

    internal const int FileChunkBytes = ChunkBytes;

    // Grown only by a piece larger than its whole capacity (a DUMP of a value over 64 KiB): a file's writer flushes
    // before a piece that does not fit (issue 14: growing 64 KiB -> 2 MiB by doubling cost every AOF rewrite ~4 MB of
    // large-object arrays, ~80 B per 1 KB key).
    // A whole file's writer (bufferBytes of a chunk or more) gathers its bytes in a pinned buffer whose first byte is
    // aligned to a block (4 KiB) and hands the sink whole blocks only, keeping the last partial block for the next
    // chunk (the end of the file excepted): the AOF rewrite's direct writer (UncachedWriter) then writes them to the
    // device straight from this buffer, without copying the whole base into its own (issue 14, h208).
    private const int BlockBytes = 4096;
    private readonly bool _blocks = bufferBytes >= ChunkBytes;
    private byte[] _buf = bufferBytes >= ChunkBytes
        ? GC.AllocateUninitializedArray<byte>(ChunkBytes + 2 * BlockBytes, pinned: true)
        : new byte[Math.Max(1, bufferBytes)];
    private int _start = -1; // the aligned offset of the buffer's first byte in _buf (0 unless _blocks); -1: not known yet
    private int _capacity;
    private int _length; // bytes buffered
    private int _crcLength; // of them, the first ones already in _crc
    private ulong _crc;

    private Span<byte> Buffered => _buf.AsSpan(Start, _length);

    private int Start
    {
        get
        {
            if (_start < 0)
            {
                if (_blocks)
                {
                    unsafe
                    {
                        nuint address = (nuint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_buf));
                        _start = (int)((BlockBytes - (address & (BlockBytes - 1))) & (BlockBytes - 1));
                    }
                    _capacity = ChunkBytes + BlockBytes;
                }
                else
                {
                    _start = 0;
                    _capacity = _buf.Length;
                }
            }
            return _start;
        }
    }

    /// <summary>Bytes handed to the sink so far.</summary>
    public long Written { get; private set; }

    /// <summary>Writes a whole file: header, AUX fields, the FUNCTION libraries, every database with its RESIZEDB sizes,
    /// the keys with their expiry, EOF and the checksum.</summary>
    /// <param name="snapshot">The keyspace, in database order (<see cref="KvStore.CreateSnapshot"/>), the FUNCTION
    /// libraries' entry (if any) first.</param>
    /// <param name="redisVersion">The <c>redis-ver</c> AUX field.</param>
    /// <param name="nowUnixMs">The <c>ctime</c> AUX field.</param>
    /// <param name="usedMemory">The <c>used-mem</c> AUX field.</param>
    /// <param name="cancel">Checked between keys.</param>
    /// <param name="aofBase">The <c>aof-base</c> AUX field: 1 for the base file of a multi-part AOF (RDBFLAGS_AOF_PREAMBLE), else 0.</param>
    /// <param name="lease">When <paramref name="snapshot"/> is this lease's <see cref="KvSnapshotLease.Entries"/>: told
    /// after each key that the writer is done with it (<see cref="KvSnapshotLease.MarkWritten"/>), so the store may
    /// overwrite that key's string in place again while the rest is written.</param>
    public void WriteAll(IReadOnlyList<KvSnapshotEntry> snapshot, string redisVersion, long nowUnixMs, long usedMemory, CancellationToken cancel = default,
        bool aofBase = false, KvSnapshotLease? lease = null)
    {
        if (lease is not null && !(snapshot is ArraySegment<KvSnapshotEntry> segment && segment.Equals(lease.Entries))) // the same array, offset and count
        {
            throw new ArgumentException("The lease's entries must be the snapshot written.", nameof(lease));
        }
        // The entries as a span (no interface call per key), and no pass over them that reads a value: the values of a
        // keyspace being overwritten sit far from each other and from their rows (the copy-on-write of every rewrite
        // moves them, §205), so each value read is a cache and TLB miss; the key loop below reads each value once, to copy
        // it. The FUNCTION libraries' entry, when there is one, is the snapshot's first (KvStore.TakeSnapshot), and a
        // database's RESIZEDB sizes are counted from the entries' own fields (h216, §213: two passes that read every
        // value's type before the key loop, ~2 misses a key more).
        ReadOnlySpan<KvSnapshotEntry> entries = snapshot switch
        {
            ArraySegment<KvSnapshotEntry> s => s,
            KvSnapshotEntry[] a => a,
            _ => snapshot.ToArray(),
        };
        WriteRaw("REDIS"u8);
        WriteRaw(Encoding.ASCII.GetBytes(Rdb.Version.ToString("D4", CultureInfo.InvariantCulture)));
        Aux("redis-ver", Encoding.ASCII.GetBytes(redisVersion));
        Aux("redis-bits", "64"u8);
        Aux("ctime", Ascii(nowUnixMs / 1000));
        Aux("used-mem", Ascii(usedMemory));
        Aux("aof-base", aofBase ? "1"u8 : "0"u8);
        int i = 0;
        while (i < entries.Length && entries[i].Value is KvFunctionLibraries functions)
        {
            foreach (byte[] code in functions.Codes)
            {
                WriteByte(Rdb.OpFunction2);
                WriteString(code, tryInteger: false);
            }
            i++;
        }
        while (i < entries.Length)
        {
            int db = entries[i].Db;
            int end = i;
            long expires = 0;
            while (end < entries.Length && entries[end].Db == db)
            {
                if (entries[end].ExpireAtUnixMs >= 0) expires++;
                end++;
            }
            WriteByte(Rdb.OpSelectDb);
            WriteLength((ulong)db);
            WriteByte(Rdb.OpResizeDb);
            WriteLength((ulong)(end - i));
            WriteLength((ulong)expires);
            KvKeyedValue?[]? rows = lease?.Rows;
            int ahead = PrefetchDistance;
            for (; i < end; i++)
            {
                ref readonly KvSnapshotEntry e = ref entries[i];
                if ((i & 1023) == 0) cancel.ThrowIfCancellationRequested();
                if (ahead > 0 && i + ahead < entries.Length)
                {
                    // The key, the value and the row of the entry `ahead` keys on, asked for now: their misses overlap
                    // the copies of the keys before it instead of stalling the loop one after another (h216, §213).
                    ref readonly KvSnapshotEntry next = ref entries[i + ahead];
                    Prefetch(next.Value);
                    Prefetch(next.Key);
                    if (rows is not null && (uint)(i + ahead) < (uint)rows.Length) Prefetch(rows[i + ahead]);
                }
                if (e.Value is KvFunctionLibraries) throw new ArgumentException("The FUNCTION libraries' entry must be the snapshot's first.", nameof(snapshot));
                if (lease is null)
                {
                    WriteKey(e); // copies the value's bytes into the buffer (or its LZF form): done with the array
                    continue;
                }
                // A long string an earlier snapshot's writer proved incompressible, unchanged since, is written raw
                // without trying LZF again; one this writer proves is recorded for the next (issue 14, h140). Both
                // before MarkWritten passes the entry (the row's bytes cannot change until then).
                bool proven = compress && e.Value is byte[] { Length: >= MinCompressLength } && lease.IsIncompressible(i);
                long sampledOut = LzfSampledOut;
                WriteEntry(e, proven);
                if (_valueGaveUpByBound) lease.RecordIncompressible(i);
                if (LzfSampledOut != sampledOut) lease.CountSampledOut();
                lease.MarkWritten(i + 1);
            }
        }
        WriteByte(Rdb.OpEof);
        Flush();
        Span<byte> crc = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(crc, _crc);
        sink(crc);
        Written += 8;
    }

    /// <summary>How many keys ahead the key loop asks for the next entries' key, value and row
    /// (EIOSHARP_KV_RDB_PREFETCH, default 8; 0: none; §213).</summary>
    internal static int PrefetchDistance { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_RDB_PREFETCH"), out int d) && d >= 0 ? d : 8;

    // A hint that the object's first cache line (its header, a string's length and first bytes) is read soon; a stale
    // address (the object moved meanwhile) costs nothing but the wasted line.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(object? o)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported && o is not null)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0((void*)System.Runtime.CompilerServices.Unsafe.As<object, nint>(ref o));
        }
    }

    private static byte[] Ascii(long v) => Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));

    private void Aux(string key, ReadOnlySpan<byte> value)
    {
        WriteByte(Rdb.OpAux);
        WriteString(Encoding.ASCII.GetBytes(key));
        WriteString(value);
    }

    /// <summary>One key: its expiry (<c>RDB_OPCODE_EXPIRETIME_MS</c>), type, name and value.</summary>
    public void WriteKey(in KvSnapshotEntry e) => WriteEntry(e, valueIncompressible: false);

    // valueIncompressible: a string value LZF is known to give up on (a proof kept in its row, KvSnapshotLease): written
    // raw without the attempt, the bytes the attempt would have given. After the call, _valueGaveUpByBound says whether
    // the value is a string whose attempt was given up by LZF's bound (a proof of its bytes alone).
    private void WriteEntry(in KvSnapshotEntry e, bool valueIncompressible)
    {
        _valueGaveUpByBound = false;
        if (e.Value is byte[] s)
        {
            bool sampledOut = false;
            if (!valueIncompressible && _lzfSkipLeft > 0 && compress && s.Length >= MinCompressLength)
            {
                _lzfSkipLeft--;
                LzfSampledOut++;
                sampledOut = true;
            }
            bool skipLzf = valueIncompressible || sampledOut;
            if (OneHeader && IsPlainShortString(e.Key) && IsWrittenRawWithoutTry(s, skipLzf))
            {
                WriteStringEntryHeader(e, s.Length); // the expiry, type, key and the value's length in one piece (§223)
                WriteRaw(s);
                _lastGaveUpByBound = false;
                _lastLzf = LzfOutcome.NotTried;
            }
            else
            {
                WriteEntryHeaderPieces(e);
                WriteStringOrRaw(s, tryInteger: true, skipLzf: skipLzf);
            }
            _valueGaveUpByBound = _lastGaveUpByBound;
            if (_lastLzf == LzfOutcome.Compressed)
            {
                _lzfMisses = 0;
                _lzfSkip = 0;
                _lzfSkipLeft = 0;
            }
            else if (_lastLzf == LzfOutcome.GaveUp && ++_lzfMisses >= LzfMissesBeforeSampling && LzfSampling)
            {
                _lzfSkip = _lzfSkip == 0 ? LzfFirstSkip : Math.Min(2 * _lzfSkip, LzfMaxSkip);
                _lzfSkipLeft = _lzfSkip;
            }
        }
        else
        {
            WriteEntryHeaderPieces(e);
            WriteValue(e.Value);
        }
    }

    private void WriteEntryHeaderPieces(in KvSnapshotEntry e)
    {
        if (e.ExpireAtUnixMs >= 0)
        {
            WriteByte(Rdb.OpExpireTimeMs);
            WriteInt64LittleEndian(e.ExpireAtUnixMs);
        }
        WriteByte(ObjectType(e.Value));
        WriteString(e.Key);
    }

    /// <summary>Whether a string key's entry header and its value's length go into the buffer as one piece
    /// (EIOSHARP_KV_RDB_ONE_HEADER=0: five pieces, as before §223; the same bytes either way).</summary>
    internal static bool OneHeader { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_KV_RDB_ONE_HEADER") != "0";

    // The longest header WriteStringEntryHeader writes: the expiry (1 + 8), the type, the key's length (at most 1 byte
    // for a key under MinCompressLength) and the key, the value's length (at most 9).
    private const int MaxOneHeader = 9 + 1 + 1 + (MinCompressLength - 1) + 9;

    // A key WriteString would write as its length and bytes: shorter than LZF's minimum (so never tried) and not an
    // integer's canonical form (no integer encoding).
    private bool IsPlainShortString(ReadOnlySpan<byte> key) =>
        key.Length < MinCompressLength && !(key.Length is > 0 and <= 11 && RespNumbers.TryParseInt64(key, out long v) && IsCanonical(key, v));

    // A value WriteStringOrRaw(s, tryInteger: true, skipLzf) would write as its length and bytes without trying LZF.
    private bool IsWrittenRawWithoutTry(byte[] s, bool skipLzf) =>
        (s.Length > 11 || !(s.Length > 0 && RespNumbers.TryParseInt64(s, out long v) && IsCanonical(s, v))) &&
        (!compress || skipLzf || s.Length < MinCompressLength);

    // The entry of a string key up to its value's bytes, as WriteEntryHeaderPieces and WriteStringOrRaw write it for a
    // plain short key and a value written raw: one reservation and one copy instead of five (§223).
    private void WriteStringEntryHeader(in KvSnapshotEntry e, int valueLength)
    {
        Span<byte> h = Reserve(MaxOneHeader);
        int n = 0;
        if (e.ExpireAtUnixMs >= 0)
        {
            h[0] = Rdb.OpExpireTimeMs;
            BinaryPrimitives.WriteInt64LittleEndian(h[1..], e.ExpireAtUnixMs);
            n = 9;
        }
        h[n++] = Rdb.TypeString;
        h[n++] = (byte)e.Key.Length; // under 64: rdbSaveLen's 6-bit form
        e.Key.CopyTo(h[n..]);
        n += e.Key.Length;
        n += EncodeLength(h[n..], (ulong)valueLength);
        Commit(n);
    }

    // rdbSaveLen into b; returns the bytes written (WriteLength's encodings).
    private static int EncodeLength(Span<byte> b, ulong length)
    {
        if (length < 1 << 6)
        {
            b[0] = (byte)length;
            return 1;
        }
        if (length < 1 << 14)
        {
            b[0] = (byte)(0x40 | (length >> 8));
            b[1] = (byte)length;
            return 2;
        }
        if (length <= uint.MaxValue)
        {
            b[0] = 0x80;
            BinaryPrimitives.WriteUInt32BigEndian(b[1..], (uint)length);
            return 5;
        }
        b[0] = 0x81;
        BinaryPrimitives.WriteUInt64BigEndian(b[1..], length);
        return 9;
    }

    /// <summary>One value without a key, as redis's DUMP serializes it (rdbSaveObjectType, rdbSaveObject): its type byte
    /// and the value in the encoding <see cref="WriteKey"/> uses.</summary>
    /// <param name="value">A string (<c>byte[]</c>), <see cref="KvList"/>, <see cref="KvSet"/>, <see cref="KvZSet"/>,
    /// <see cref="KvHash"/> or <see cref="KvStream"/>.</param>
    /// <exception cref="InvalidOperationException">Another kind of value.</exception>
    public void WriteObject(object value)
    {
        WriteByte(ObjectType(value));
        WriteValue(value);
    }

    private static byte ObjectType(object value) => value switch
    {
        byte[] => Rdb.TypeString,
        KvList => Rdb.TypeList,
        KvSet => Rdb.TypeSet,
        KvZSet => Rdb.TypeZSet2,
        KvHash => Rdb.TypeHash,
        KvStream => Rdb.TypeStreamListpacks2,
        _ => throw new InvalidOperationException($"no RDB encoding for a value of type {value.GetType().Name}"),
    };

    private void WriteValue(object value)
    {
        switch (value)
        {
            case byte[] s:
                WriteString(s);
                break;
            case KvList list:
                WriteLength((ulong)list.Count);
                foreach (byte[] v in list.Elements) WriteString(v);
                break;
            case KvSet set:
                WriteLength((ulong)set.Count);
                foreach (byte[] v in set.Members()) WriteString(v);
                break;
            case KvZSet zset:
                WriteLength((ulong)zset.Length);
                Span<byte> score = stackalloc byte[8];
                foreach (ZEntry z in zset.Range(0, zset.Length - 1, reverse: true))
                {
                    WriteString(z.Member);
                    BinaryPrimitives.WriteDoubleLittleEndian(score, z.Score);
                    WriteRaw(score);
                }
                break;
            case KvHash hash:
                WriteLength((ulong)hash.Count);
                foreach (KeyValuePair<byte[], byte[]> kv in hash.Entries())
                {
                    WriteString(kv.Key);
                    WriteString(kv.Value);
                }
                break;
            case KvStream stream:
                WriteStream(stream);
                break;
            default:
                throw new InvalidOperationException($"no RDB encoding for a value of type {value.GetType().Name}");
        }
    }

    // rdbSaveObject for OBJ_STREAM (redis 7.0, RDB_TYPE_STREAM_LISTPACKS_2).
    private void WriteStream(KvStream s)
    {
        int nodes = 0;
        foreach (StreamNode n in s.Nodes)
        {
            if (n.Entries.Count > 0) nodes++;
        }
        WriteLength((ulong)nodes);
        var lp = new RdbListpackBuilder();
        Span<byte> rawId = stackalloc byte[16];
        foreach (StreamNode n in s.Nodes)
        {
            if (n.Entries.Count == 0) continue;
            WriteRawId(rawId, n.MasterId);
            WriteString(rawId, tryInteger: false);
            lp.Reset();
            long live = 0, deleted = 0;
            foreach (StreamEntry entry in n.Entries)
            {
                if (entry.Deleted) deleted++;
                else live++;
            }
            lp.Add(live);
            lp.Add(deleted);
            lp.Add(n.MasterFields.Length);
            foreach (byte[] f in n.MasterFields) lp.Add(f);
            lp.Add(0);
            foreach (StreamEntry entry in n.Entries)
            {
                int fields = entry.FieldCount;
                bool same = fields == n.MasterFields.Length;
                for (int i = 0; same && i < fields; i++) same = entry.Pairs[2 * i].AsSpan().SequenceEqual(n.MasterFields[i]);
                int flags = (entry.Deleted ? Rdb.StreamItemFlagDeleted : 0) | (same ? Rdb.StreamItemFlagSameFields : 0);
                lp.Add(flags);
                lp.Add(unchecked((long)(entry.Id.Ms - n.MasterId.Ms)));
                lp.Add(unchecked((long)(entry.Id.Seq - n.MasterId.Seq)));
                if (!same) lp.Add(fields);
                for (int i = 0; i < fields; i++)
                {
                    if (!same) lp.Add(entry.Pairs[2 * i]);
                    lp.Add(entry.Pairs[2 * i + 1]);
                }
                lp.Add(fields + 3 + (same ? 0 : fields + 1)); // lp-count: the entry's elements before this one
            }
            WriteString(lp.Finish(), tryInteger: false);
        }
        WriteLength((ulong)s.Count);
        WriteLength(s.LastId.Ms);
        WriteLength(s.LastId.Seq);
        WriteLength(s.FirstId.Ms);
        WriteLength(s.FirstId.Seq);
        WriteLength(s.MaxDeletedId.Ms);
        WriteLength(s.MaxDeletedId.Seq);
        WriteLength((ulong)s.EntriesAdded);
        WriteLength((ulong)s.GroupCount);
        if (s.Groups is null) return;
        foreach (StreamGroup g in s.Groups.Values)
        {
            WriteString(g.Name);
            WriteLength(g.LastId.Ms);
            WriteLength(g.LastId.Seq);
            WriteLength(unchecked((ulong)g.EntriesRead));
            WriteLength((ulong)g.Pel.Count);
            foreach (StreamPending p in g.Pel)
            {
                WriteRawId(rawId, p.Id);
                WriteRaw(rawId);
                WriteInt64LittleEndian(p.DeliveryTime);
                WriteLength((ulong)p.DeliveryCount);
            }
            WriteLength((ulong)g.Consumers.Count);
            foreach (StreamConsumer c in g.Consumers.Values)
            {
                WriteString(c.Name);
                WriteInt64LittleEndian(c.SeenTime);
                WriteLength((ulong)c.Pel.Count);
                foreach (StreamPending p in c.Pel)
                {
                    WriteRawId(rawId, p.Id);
                    WriteRaw(rawId);
                }
            }
        }
    }

    private static void WriteRawId(Span<byte> raw, StreamId id)
    {
        BinaryPrimitives.WriteUInt64BigEndian(raw, id.Ms);
        BinaryPrimitives.WriteUInt64BigEndian(raw[8..], id.Seq);
    }

    // ------------------------------------------------------------------ primitives

    /// <summary>rdbSaveLen: 6 bits, 14 bits, 32 bits or 64 bits (big endian).</summary>
    public void WriteLength(ulong length)
    {
        Span<byte> b = stackalloc byte[9];
        if (length < 1 << 6)
        {
            b[0] = (byte)length;
            WriteRaw(b[..1]);
        }
        else if (length < 1 << 14)
        {
            b[0] = (byte)(0x40 | (length >> 8));
            b[1] = (byte)length;
            WriteRaw(b[..2]);
        }
        else if (length <= uint.MaxValue)
        {
            b[0] = 0x80;
            BinaryPrimitives.WriteUInt32BigEndian(b[1..], (uint)length);
            WriteRaw(b[..5]);
        }
        else
        {
            b[0] = 0x81;
            BinaryPrimitives.WriteUInt64BigEndian(b[1..], length);
            WriteRaw(b);
        }
    }

    /// <summary>rdbSaveRawString without compression: a string of at most 11 bytes that is the canonical form of an
    /// integer fitting 32 bits goes in an integer encoding (as Redis's rdbTryIntegerEncoding).</summary>
    public void WriteString(ReadOnlySpan<byte> s, bool tryInteger = true) => WriteStringOrRaw(s, tryInteger, skipLzf: false);

    // skipLzf: the caller knows LZF gives up on s (RdbBlobs.LzfCompress returns 0 with the budget s.Length - 4).
    // _lastGaveUpByBound: LZF was tried on s and its bound gave up (RdbBlobs.LzfState.QuickGiveUps).
    private void WriteStringOrRaw(ReadOnlySpan<byte> s, bool tryInteger, bool skipLzf)
    {
        _lastGaveUpByBound = false;
        _lastLzf = LzfOutcome.NotTried;
        if (tryInteger && s.Length is > 0 and <= 11 && RespNumbers.TryParseInt64(s, out long v) && IsCanonical(s, v))
        {
            Span<byte> b = stackalloc byte[5];
            if (v is >= sbyte.MinValue and <= sbyte.MaxValue)
            {
                b[0] = 0xC0;
                b[1] = (byte)(sbyte)v;
                WriteRaw(b[..2]);
                return;
            }
            if (v is >= short.MinValue and <= short.MaxValue)
            {
                b[0] = 0xC1;
                BinaryPrimitives.WriteInt16LittleEndian(b[1..], (short)v);
                WriteRaw(b[..3]);
                return;
            }
            if (v is >= int.MinValue and <= int.MaxValue)
            {
                b[0] = 0xC2;
                BinaryPrimitives.WriteInt32LittleEndian(b[1..], (int)v);
                WriteRaw(b[..5]);
                return;
            }
        }
        if (compress && !skipLzf && s.Length >= MinCompressLength && TryWriteLzf(s)) return;
        WriteLength((ulong)s.Length);
        WriteRaw(s);
    }

    // rdbSaveLzfStringObject: worth it only when it saves at least 4 bytes (out_len = len - 4), then rdbSaveLzfBlob:
    // RDB_ENC_LZF, the compressed length, the original length, the data.
    private bool TryWriteLzf(ReadOnlySpan<byte> s)
    {
        _lzf ??= new RdbBlobs.LzfState();
        if (_lzfOutput is null || _lzfOutput.Length < s.Length - 4)
        {
            _lzfOutput = new byte[Math.Max(s.Length - 4, Math.Min(2 * (_lzfOutput?.Length ?? 0), ChunkBytes))];
        }
        long quick = _lzf.QuickGiveUps;
        int n = RdbBlobs.LzfCompress(s, _lzfOutput.AsSpan(0, s.Length - 4), _lzf);
        if (n == 0)
        {
            _lastGaveUpByBound = _lzf.QuickGiveUps != quick;
            _lastLzf = LzfOutcome.GaveUp;
            return false;
        }
        _lastLzf = LzfOutcome.Compressed;
        WriteRaw([0xC3]);
        WriteLength((ulong)n);
        WriteLength((ulong)s.Length);
        WriteRaw(_lzfOutput.AsSpan(0, n));
        if (_lzfOutput.Length > ChunkBytes)
        {
            _lzfOutput = null; // a very large value's buffers are not kept
            _lzf.Scratch = [];
        }
        return true;
    }

    // string2ll then ll2string gives the same bytes (no "+1", "01", "-0").
    private static bool IsCanonical(ReadOnlySpan<byte> s, long v)
    {
        Span<byte> tmp = stackalloc byte[20];
        return v.TryFormat(tmp, out int n, default, CultureInfo.InvariantCulture) && tmp[..n].SequenceEqual(s);
    }

    private void WriteInt64LittleEndian(long v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        WriteRaw(b);
    }

    private void WriteByte(byte b) => WriteRaw([b]);

    private void WriteRaw(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, ChunkBytes);
            int start = Start;
            if (_capacity - _length < n && _length > 0) Flush(all: !_blocks); // the sink takes what is buffered; no growth
            if (_capacity - _length < n) start = Grow(_length + n); // a piece over the whole buffer (a DUMP's large value)
            data[..n].CopyTo(_buf.AsSpan(start + _length, n));
            _length += n;
            data = data[n..];
            if (_length >= ChunkBytes) Flush(all: !_blocks);
            else if (_length - _crcLength >= CrcStepBytes && checksum) ChecksumStep(start);
        }
    }

    /// <summary>How many bytes the buffer gathers before they are checksummed, while they are still in the core's first
    /// cache (EIOSHARP_KV_RDB_CRC_STEP, default 4 KiB; 0: when the buffer is handed to the sink, as before §223, by
    /// then ~1 MiB written since, half of it pushed out to the L3 by the values read meanwhile).</summary>
    internal static int CrcStepBytes { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_RDB_CRC_STEP"), out int step) && step >= 0 ? (step == 0 ? int.MaxValue : step) : 4096;

    // Checksums the buffered bytes not in _crc yet, whole 256-byte steps of the fold (the rest waits for the next step or
    // the flush; the CRC of a sequence is the same however it is cut).
    private void ChecksumStep(int start)
    {
        int take = (_length - _crcLength) & ~255;
        _crc = KvDump.Crc64(_buf.AsSpan(start + _crcLength, take), _crc);
        _crcLength += take;
    }

    // Room for n more bytes at the buffer's end (n at most a block): what WriteRaw does before its copy. Commit says how
    // many were written.
    private Span<byte> Reserve(int n)
    {
        int start = Start;
        if (_capacity - _length < n && _length > 0) Flush(all: !_blocks);
        if (_capacity - _length < n) start = Grow(_length + n);
        return _buf.AsSpan(start + _length, n);
    }

    private void Commit(int n)
    {
        _length += n;
        if (_length >= ChunkBytes) Flush(all: !_blocks);
        else if (_length - _crcLength >= CrcStepBytes && checksum) ChecksumStep(Start);
    }

    // Returns the new start (0: a grown buffer is a plain array).
    private int Grow(int capacity)
    {
        var bigger = new byte[capacity];
        Buffered.CopyTo(bigger);
        _buf = bigger;
        _start = 0;
        _capacity = capacity;
        return 0;
    }

    /// <summary>Hands the buffered bytes to the sink.</summary>
    public void Flush() => Flush(all: true);

    // all: false hands the sink whole blocks only and keeps the rest (less than a block) at the buffer's start.
    private void Flush(bool all)
    {
        if (_length == 0) return;
        Span<byte> buffered = Buffered;
        if (checksum && _crcLength < _length) _crc = KvDump.Crc64(buffered[_crcLength..], _crc);
        _crcLength = _length;
        int give = all ? _length : _length & ~(BlockBytes - 1);
        if (give == 0) return;
        sink(buffered[..give]);
        Written += give;
        _length -= give;
        if (_length > 0) buffered[give..].CopyTo(buffered);
        _crcLength = _length;
    }
}

/// <summary>Builds a listpack in Redis's byte layout (listpack.c): a 6-byte header, entries with their back-lengths, 0xFF.</summary>
internal sealed class RdbListpackBuilder
{
    private readonly ArrayBufferWriter<byte> _data = new(256);
    private int _count;

    public void Reset()
    {
        _data.ResetWrittenCount();
        _data.Write(new byte[6]);
        _count = 0;
    }

    /// <summary>Appends an integer in the smallest integer encoding.</summary>
    public void Add(long v)
    {
        Span<byte> b = stackalloc byte[9];
        int n;
        if (v is >= 0 and <= 127)
        {
            b[0] = (byte)v;
            n = 1;
        }
        else if (v is >= -4096 and <= 4095)
        {
            ushort u = (ushort)(v & 0x1FFF);
            b[0] = (byte)(0xC0 | (u >> 8));
            b[1] = (byte)u;
            n = 2;
        }
        else if (v is >= short.MinValue and <= short.MaxValue)
        {
            b[0] = 0xF1;
            BinaryPrimitives.WriteInt16LittleEndian(b[1..], (short)v);
            n = 3;
        }
        else if (v is >= -(1 << 23) and < 1 << 23)
        {
            b[0] = 0xF2;
            b[1] = (byte)v;
            b[2] = (byte)(v >> 8);
            b[3] = (byte)(v >> 16);
            n = 4;
        }
        else if (v is >= int.MinValue and <= int.MaxValue)
        {
            b[0] = 0xF3;
            BinaryPrimitives.WriteInt32LittleEndian(b[1..], (int)v);
            n = 5;
        }
        else
        {
            b[0] = 0xF4;
            BinaryPrimitives.WriteInt64LittleEndian(b[1..], v);
            n = 9;
        }
        _data.Write(b[..n]);
        Backlen(n);
    }

    /// <summary>Appends a string (always in a string encoding: Redis reads either form of a value).</summary>
    public void Add(ReadOnlySpan<byte> s)
    {
        Span<byte> h = stackalloc byte[5];
        int n;
        if (s.Length < 64)
        {
            h[0] = (byte)(0x80 | s.Length);
            n = 1;
        }
        else if (s.Length < 4096)
        {
            h[0] = (byte)(0xE0 | (s.Length >> 8));
            h[1] = (byte)s.Length;
            n = 2;
        }
        else
        {
            h[0] = 0xF0;
            BinaryPrimitives.WriteInt32LittleEndian(h[1..], s.Length);
            n = 5;
        }
        _data.Write(h[..n]);
        _data.Write(s);
        Backlen(n + s.Length);
    }

    // lpEncodeBacklen: the entry's length, 7 bits a byte, most significant first, every byte but the first with bit 7 set.
    private void Backlen(long l)
    {
        Span<byte> b = stackalloc byte[5];
        int n = l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
        for (int i = 0; i < n; i++)
        {
            int shift = 7 * (n - 1 - i);
            b[i] = (byte)(((l >> shift) & 127) | (i == 0 ? 0L : 128L));
        }
        _data.Write(b[..n]);
        _count++;
    }

    /// <summary>Terminates the listpack and returns its bytes (valid until the next <see cref="Reset"/>).</summary>
    public ReadOnlySpan<byte> Finish()
    {
        _data.Write<byte>([0xFF]);
        Span<byte> header = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_data.WrittenMemory).Span;
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)_data.WrittenCount);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], (ushort)Math.Min(_count, 65535));
        return _data.WrittenSpan;
    }
}

/// <summary>What <see cref="KvRdb.Load"/> read.</summary>
/// <param name="Version">The file's RDB version.</param>
/// <param name="KeysLoaded">Keys added to the store.</param>
/// <param name="ExpiredSkipped">Keys left out because their expiry time had passed.</param>
/// <param name="EmptySkipped">Empty collections left out (as Redis 7.0 does).</param>
public readonly record struct KvRdbLoadResult(int Version, long KeysLoaded, long ExpiredSkipped, long EmptySkipped)
{
    /// <summary>Bytes read from the start of the input up to and including the checksum after the EOF opcode: where an AOF
    /// tail starts in a file with an RDB preamble (Redis's multi-part AOF base, or a pre-7 <c>aof-use-rdb-preamble</c> file).</summary>
    public long BytesRead { get; init; }
}

/// <summary>Redis's RDB file format: writing a keyspace snapshot (version 10, as redis-server 7.0) and loading a file
/// written by redis-server 2.x to 7.2 (versions 1 to 11). See docs/kv.md, "RDB files".</summary>
public static class KvRdb
{
    /// <summary>Writes a whole RDB file.</summary>
    /// <param name="snapshot">The keyspace in database order (<see cref="KvStore.CreateSnapshot"/>).</param>
    /// <param name="sink">Receives the bytes in order, in chunks of about 1 MiB (the span is valid during the call only).</param>
    /// <param name="redisVersion">The <c>redis-ver</c> AUX field.</param>
    /// <param name="nowUnixMs">The <c>ctime</c> AUX field (Unix milliseconds; written in seconds).</param>
    /// <param name="usedMemory">The <c>used-mem</c> AUX field, in bytes.</param>
    /// <param name="cancel">Checked every 1024 keys.</param>
    /// <param name="compression">Redis's <c>rdbcompression</c>: strings over 20 bytes LZF-compressed when that saves at
    /// least 4 bytes (Redis's own lzf_compress, so the same bytes as redis-server writes), except that string values are
    /// sampled once 16 in a row did not compress: runs of up to 128 are then written raw without trying, one tried between
    /// runs, until one compresses (adaptive compression; a file is never larger than with <c>rdbcompression no</c>;
    /// docs/kv.md, "RDB files"; EIOSHARP_KV_RDB_LZF_SAMPLING=0 tries every value).</param>
    /// <param name="checksum">Redis's <c>rdbchecksum</c>: false writes 0 as the CRC-64 (loaders then check nothing).</param>
    /// <returns>The file's length in bytes.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was cancelled.</exception>
    /// <exception cref="Exception">Whatever <paramref name="sink"/> throws.</exception>
    /// <param name="aofBase">Write <c>aof-base 1</c>, as redis does for the base file of its multi-part AOF.</param>
    /// <param name="lease">The lease whose <see cref="KvSnapshotLease.Entries"/> <paramref name="snapshot"/> is, or null:
    /// after each key is written (its bytes copied out) the writer calls <see cref="KvSnapshotLease.MarkWritten"/>, so a
    /// key overwritten during the rest of the write is overwritten in place instead of in a new array (issue 14). Pass it
    /// only when the snapshot is written once (a second pass would read overwritten bytes).</param>
    /// <exception cref="ArgumentException"><paramref name="lease"/>'s entries are not <paramref name="snapshot"/>.</exception>
    public static long Write(IReadOnlyList<KvSnapshotEntry> snapshot, Action<ReadOnlySpan<byte>> sink, string redisVersion, long nowUnixMs,
        long usedMemory, CancellationToken cancel = default, bool aofBase = false, bool compression = true, bool checksum = true,
        KvSnapshotLease? lease = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(sink);
        return WriteWithSampling(snapshot, sink, redisVersion, nowUnixMs, usedMemory, cancel, aofBase, compression, checksum, lease, RdbWriter.DefaultLzfSampling);
    }

    /// <summary><see cref="Write"/> with the writer's adaptive compression chosen (<see cref="RdbWriter.LzfSampling"/>; tests that compare files
    /// byte for byte with LZF tried on every string turn it off).</summary>
    internal static long WriteWithSampling(IReadOnlyList<KvSnapshotEntry> snapshot, Action<ReadOnlySpan<byte>> sink, string redisVersion, long nowUnixMs,
        long usedMemory, CancellationToken cancel, bool aofBase, bool compression, bool checksum, KvSnapshotLease? lease, bool lzfSampling)
    {
        var writer = new RdbWriter(sink, compression, checksum, RdbWriter.FileChunkBytes) { LzfSampling = lzfSampling };
        writer.WriteAll(snapshot, redisVersion, nowUnixMs, usedMemory, cancel, aofBase, lease);
        return writer.Written;
    }

    /// <summary>Loads an RDB file into <paramref name="store"/>, which should be empty. Blocking: run it on a system thread.</summary>
    /// <param name="input">The file, read sequentially from its start.</param>
    /// <param name="fileLength">The file's length in bytes: no length read from the file may go past it.</param>
    /// <param name="store">Receives the keys (and FUNCTION libraries).</param>
    /// <param name="nowUnixMs">Keys whose expiry time is before it are left out.</param>
    /// <param name="cancel">Checked every 1024 keys.</param>
    /// <param name="verifyChecksum">Redis's <c>rdbchecksum</c>: false neither computes nor checks the CRC-64 footer (a
    /// stored 0 is never checked: a file written with rdbchecksum no).</param>
    /// <returns>What was read.</returns>
    /// <exception cref="RdbFormatException">The file is corrupt, truncated, of a version above 11, has a wrong checksum,
    /// a duplicated key, a database over the store's count, or module data; the store keeps the keys read before.</exception>
    /// <exception cref="IOException">Reading <paramref name="input"/> failed.</exception>
    public static KvRdbLoadResult Load(Stream input, long fileLength, KvStore store, long nowUnixMs, CancellationToken cancel = default,
        bool verifyChecksum = true)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(store);
        RdbLoader loader = RdbLoader.Load(input, fileLength, store, nowUnixMs, cancel, verifyChecksum);
        return new KvRdbLoadResult(loader.FileVersion, loader.KeysLoaded, loader.ExpiredSkipped, loader.EmptySkipped) { BytesRead = loader.BytesRead };
    }
}
