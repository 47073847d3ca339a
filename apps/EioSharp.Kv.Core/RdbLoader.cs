using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>An RDB file that cannot be loaded: corrupt, truncated, of a newer version, or with module values.</summary>
/// <param name="message">What is wrong, and where (the byte offset).</param>
public sealed class RdbFormatException(string message) : Exception(message);

/// <summary>Loads an RDB file (versions 1 to 11: what redis-server 2.x to 7.2 write) into a store.</summary>
/// <remarks>
/// <para><b>Encodings read</b>: strings (raw, integer, LZF-compressed); lists as plain lists, ziplists, quicklists of
/// ziplists and quicklist 2 (listpack and plain nodes); sets as plain sets, intsets and listpacks; sorted sets as
/// ZSET (text scores), ZSET_2 (binary scores), ziplists and listpacks; hashes as plain hashes, zipmaps, ziplists and
/// listpacks; streams as STREAM_LISTPACKS 1, 2 and 3 with their consumer groups and PELs; FUNCTION2 libraries; expiry
/// times in seconds and milliseconds; AUX, RESIZEDB, IDLE and FREQ records (read and ignored). Module values and module
/// AUX records are refused (no module can read them).</para>
/// <para><b>How values are built</b>: each key is rebuilt by the store's own creation commands (RPUSH, SADD, ZADD, HSET,
/// XADD, XSETID, XGROUP, XCLAIM, PEXPIREAT, FUNCTION LOAD) executed on the loading store, as for the AOF; so a value
/// gets the encodings of this server's thresholds and nothing the commands refuse can be built. A command the store
/// refuses is a load error. Keys whose expiry time has passed are skipped, as a Redis master does; so are empty
/// collections (Redis 7.0 skips them too).</para>
/// <para><b>Errors</b>: every length is checked against the bytes actually present before anything is allocated for
/// it; a bad file gives an <see cref="RdbFormatException"/>, never another exception.</para>
/// </remarks>
internal sealed class RdbLoader
{
    private const int ElementsPerCommand = 512;

    private readonly Stream _input;
    private readonly long _fileLength;
    private readonly byte[] _buffer; // up to 64 KiB; no larger than the input (a RESTORE payload is often tiny)
    private int _bufferPos, _bufferEnd;
    private long _consumed; // bytes consumed before _buffer[_bufferPos]
    private ulong _crc;
    private int _crcFrom; // the part of _buffer before this is in _crc already

    private readonly KvStore _store;
    private readonly long _now;
    private readonly KvSession _session = new();
    private readonly ArrayBufferWriter<byte> _reply = new(256);
    private readonly List<byte[]> _args = new(ElementsPerCommand * 2 + 4);

    /// <summary>Keys loaded.</summary>
    public long KeysLoaded { get; private set; }

    /// <summary>Keys skipped because they had expired.</summary>
    public long ExpiredSkipped { get; private set; }

    /// <summary>Empty collections skipped.</summary>
    public long EmptySkipped { get; private set; }

    /// <summary>Bytes consumed from the input so far (after a load: up to the end of the checksum).</summary>
    public long BytesRead => _consumed + _bufferPos;

    /// <summary>The RDB version of the file.</summary>
    public int FileVersion { get; private set; }

    private readonly bool _verifyChecksum;

    private RdbLoader(Stream input, long fileLength, KvStore store, long nowUnixMs, bool verifyChecksum)
    {
        _verifyChecksum = verifyChecksum;
        _input = input;
        _fileLength = fileLength;
        _buffer = new byte[(int)Math.Clamp(fileLength, 16, 64 * 1024)];
        _store = store;
        _now = nowUnixMs;
    }

    /// <summary>Reads the whole file from <paramref name="input"/> into <paramref name="store"/> (which should be empty).</summary>
    /// <param name="input">The file, read sequentially from its start.</param>
    /// <param name="fileLength">Its length in bytes (bounds every allocation).</param>
    /// <param name="store">Receives the keys.</param>
    /// <param name="nowUnixMs">Keys that expired before this are skipped.</param>
    /// <param name="cancel">Checked between keys.</param>
    /// <param name="verifyChecksum">Redis's <c>rdbchecksum</c>: false neither computes nor checks the footer.</param>
    /// <exception cref="RdbFormatException">The file is not a loadable RDB file; the store holds the keys read before the error.</exception>
    public static RdbLoader Load(Stream input, long fileLength, KvStore store, long nowUnixMs, CancellationToken cancel = default, bool verifyChecksum = true)
    {
        var loader = new RdbLoader(input, fileLength, store, nowUnixMs, verifyChecksum);
        try
        {
            loader.Run(cancel);
        }
        catch (EndOfStreamException)
        {
            throw loader.Corrupt("unexpected end of file (truncated)");
        }
        catch (Exception e) when (e is OverflowException or ArgumentException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw loader.Corrupt("invalid value: " + e.Message);
        }
        return loader;
    }

    private RdbFormatException Corrupt(string what) => new($"Bad RDB file at byte {_consumed + _bufferPos - 0}: {what}");

    private void Run(CancellationToken cancel)
    {
        Span<byte> header = stackalloc byte[9];
        ReadExact(header);
        if (!header[..5].SequenceEqual("REDIS"u8)) throw new RdbFormatException("Wrong signature trying to load DB from file (not an RDB file)");
        if (!int.TryParse(Encoding.ASCII.GetString(header[5..]), NumberStyles.None, CultureInfo.InvariantCulture, out int version)
            || version < 1 || version > Rdb.MaxReadVersion)
        {
            throw new RdbFormatException($"Can't handle RDB format version {Encoding.ASCII.GetString(header[5..])}");
        }
        FileVersion = version;
        int db = 0;
        long expireAt = -1;
        long keys = 0;
        while (true)
        {
            byte type = ReadByte();
            switch (type)
            {
                case Rdb.OpExpireTime:
                    expireAt = ReadInt32LittleEndian() * 1000L;
                    continue;
                case Rdb.OpExpireTimeMs:
                    expireAt = ReadInt64LittleEndian();
                    continue;
                case Rdb.OpFreq:
                    ReadByte();
                    continue;
                case Rdb.OpIdle:
                    ReadLength();
                    continue;
                case Rdb.OpEof:
                    break;
                case Rdb.OpSelectDb:
                    ulong index = ReadLength();
                    if (index >= (ulong)_store.DatabaseCount)
                    {
                        throw new RdbFormatException($"Data file was created with a Redis server configured to handle more than {_store.DatabaseCount} databases (it selects database {index}); raise 'databases'");
                    }
                    db = (int)index;
                    _session.Db = db;
                    continue;
                case Rdb.OpResizeDb:
                    ReadLength();
                    ReadLength();
                    continue;
                case Rdb.OpAux:
                    ReadString();
                    ReadString();
                    continue;
                case Rdb.OpModuleAux:
                    throw new RdbFormatException("The RDB file contains AUX module data I can't load: no modules are supported");
                case Rdb.OpFunction:
                    throw new RdbFormatException("Pre-release function format not supported (RDB_OPCODE_FUNCTION)");
                case Rdb.OpFunction2:
                    byte[] code = ReadString();
                    Execute([B("FUNCTION"), B("LOAD"), B("REPLACE"), code]);
                    continue;
                default:
                    if ((keys++ & 1023) == 0) cancel.ThrowIfCancellationRequested();
                    LoadKey(type, expireAt);
                    expireAt = -1;
                    continue;
            }
            break;
        }
        if (version >= 5)
        {
            UpdateCrc();
            ulong expected = _crc; // the CRC of everything before the footer
            Span<byte> footer = stackalloc byte[8];
            ReadExact(footer, crc: false);
            ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(footer);
            if (_verifyChecksum && stored != 0 && stored != expected)
            {
                throw new RdbFormatException($"Wrong RDB checksum expected: ({stored:x16}) got: ({expected:x16})");
            }
        }
    }

    private static byte[] B(string s) => Encoding.ASCII.GetBytes(s);

    // ------------------------------------------------------------------ values

    private void LoadKey(byte type, long expireAt) => LoadValue(type, ReadString(), expireAt);

    /// <summary>RESTORE's rdbLoadObject: builds the value of a DUMP payload (its type byte first; the footer may follow:
    /// as Redis, the value is read from the whole payload and what follows it is not looked at) under the empty key in
    /// database 0 of <paramref name="store"/>, a private store for this value.</summary>
    /// <param name="payload">The whole payload, already verified (version and checksum).</param>
    /// <param name="store">A fresh store: the value is built in it by the creation commands, so it gets the encodings of
    /// the store's thresholds and nothing the commands refuse can be built.</param>
    /// <param name="nowUnixMs">The current time (for the commands; a payload carries no expiry).</param>
    /// <param name="value">The value built (a <c>byte[]</c> or a <see cref="KvObject"/>); null when false.</param>
    /// <returns>False, never an exception, when the payload is not a valid value of a type redis-server 7.0 restores
    /// (types 0-5 and 9-19: not a module, not redis 7.2's set listpack or stream listpacks 3), is truncated, is an empty
    /// collection, or a command refuses it. Every length is checked against the payload's size before anything is
    /// allocated for it.</returns>
    public static bool TryLoadObject(ReadOnlySpan<byte> payload, KvStore store, long nowUnixMs, out object? value)
    {
        value = null;
        if (payload.IsEmpty) return false;
        byte type = payload[0];
        if (type is Rdb.TypeModule or Rdb.TypeModule2 or 8 or > Rdb.TypeStreamListpacks2) return false; // rdbIsObjectType of 7.0
        var loader = new RdbLoader(new MemoryStream(payload[1..].ToArray(), writable: false), payload.Length - 1, store, nowUnixMs, verifyChecksum: false);
        try
        {
            loader.LoadValue(type, [], -1);
        }
        catch (Exception e) when (e is RdbFormatException or EndOfStreamException or OverflowException or ArgumentException
            or InvalidOperationException or IndexOutOfRangeException or FormatException or KeyNotFoundException)
        {
            return false;
        }
        if (loader.KeysLoaded != 1 || !store.Database(0).Lookup.TryGetValue([], out KvEntry? e1)) return false;
        value = e1.Value;
        return true;
    }

    private void LoadValue(byte type, byte[] key, long expireAt)
    {
        bool skip = expireAt >= 0 && expireAt < _now;
        KvDatabase database = _store.Database(_session.Db);
        if (!skip && database.ContainsKey(key))
        {
            throw new RdbFormatException($"Duplicated key '{Printable(key)}' in DB {_session.Db}");
        }
        var sink = new ValueSink(this, key, skip);
        switch (type)
        {
            case Rdb.TypeString:
                sink.String(ReadString());
                break;
            case Rdb.TypeList:
            case Rdb.TypeSet:
            {
                ulong n = ReadCount(1);
                for (ulong i = 0; i < n; i++) sink.Element(type == Rdb.TypeList ? 'l' : 's', ReadString());
                break;
            }
            case Rdb.TypeZSet:
            case Rdb.TypeZSet2:
            {
                ulong n = ReadCount(2);
                for (ulong i = 0; i < n; i++)
                {
                    byte[] member = ReadString();
                    double score = type == Rdb.TypeZSet2 ? BitConverter.Int64BitsToDouble(ReadInt64LittleEndian()) : ReadTextDouble();
                    if (double.IsNaN(score)) throw Corrupt("Zset with NAN score detected");
                    sink.Scored(member, score);
                }
                break;
            }
            case Rdb.TypeHash:
            {
                ulong n = ReadCount(2);
                for (ulong i = 0; i < n; i++)
                {
                    byte[] field = ReadString();
                    sink.Pair(field, ReadString());
                }
                break;
            }
            case Rdb.TypeListQuicklist:
            case Rdb.TypeListQuicklist2:
            {
                ulong nodes = ReadCount(1);
                for (ulong i = 0; i < nodes; i++)
                {
                    ulong container = type == Rdb.TypeListQuicklist2 ? ReadLength() : 2;
                    byte[] blob = ReadString();
                    if (container == 1) sink.Element('l', blob); // QUICKLIST_NODE_CONTAINER_PLAIN: one large element
                    else if (container != 2) throw Corrupt($"Quicklist integrity check failed (container {container})");
                    else
                    {
                        var items = type == Rdb.TypeListQuicklist ? RdbBlobs.Ziplist(blob) : RdbBlobs.Listpack(blob);
                        if (items.Count == 0) throw Corrupt("empty quicklist node");
                        foreach (byte[] v in items) sink.Element('l', v);
                    }
                }
                break;
            }
            case Rdb.TypeListZiplist:
                foreach (byte[] v in RdbBlobs.Ziplist(ReadString())) sink.Element('l', v);
                break;
            case Rdb.TypeSetIntset:
                foreach (byte[] v in RdbBlobs.Intset(ReadString())) sink.Element('s', v);
                break;
            case Rdb.TypeSetListpack:
                foreach (byte[] v in RdbBlobs.Listpack(ReadString())) sink.Element('s', v);
                break;
            case Rdb.TypeZSetZiplist:
            case Rdb.TypeZSetListpack:
            case Rdb.TypeHashZiplist:
            case Rdb.TypeHashListpack:
            {
                byte[] blob = ReadString();
                var items = type is Rdb.TypeZSetZiplist or Rdb.TypeHashZiplist ? RdbBlobs.Ziplist(blob) : RdbBlobs.Listpack(blob);
                if (items.Count % 2 != 0) throw Corrupt("odd number of elements in a hash or sorted set");
                for (int i = 0; i < items.Count; i += 2)
                {
                    if (type is Rdb.TypeHashZiplist or Rdb.TypeHashListpack) sink.Pair(items[i], items[i + 1]);
                    else sink.Scored(items[i], ParseScore(items[i + 1]));
                }
                break;
            }
            case Rdb.TypeHashZipmap:
                foreach ((byte[] f, byte[] v) in RdbBlobs.Zipmap(ReadString())) sink.Pair(f, v);
                break;
            case Rdb.TypeStreamListpacks:
            case Rdb.TypeStreamListpacks2:
            case Rdb.TypeStreamListpacks3:
                LoadStream(type, sink);
                break;
            case Rdb.TypeModule:
            case Rdb.TypeModule2:
                throw new RdbFormatException($"The RDB file contains module data for the key '{Printable(key)}' that I can't load: no modules are supported");
            default:
                throw Corrupt($"Unknown RDB encoding type {type}");
        }
        if (skip)
        {
            ExpiredSkipped++;
            return;
        }
        if (!sink.Finish())
        {
            EmptySkipped++;
            return;
        }
        if (expireAt >= 0) Execute([B("PEXPIREAT"), key, Encoding.ASCII.GetBytes(expireAt.ToString(CultureInfo.InvariantCulture))]);
        KeysLoaded++;
    }

    private double ParseScore(byte[] text)
    {
        if (RespNumbers.TryParseDouble(text, out double d) && !double.IsNaN(d)) return d;
        throw Corrupt("sorted set score is not a number");
    }

    // rdbLoadDoubleValue: a length byte (253 nan, 254 +inf, 255 -inf) and that many ASCII characters.
    private double ReadTextDouble()
    {
        byte len = ReadByte();
        switch (len)
        {
            case 253: return double.NaN;
            case 254: return double.PositiveInfinity;
            case 255: return double.NegativeInfinity;
        }
        byte[] text = new byte[len];
        ReadExact(text);
        if (!double.TryParse(Encoding.ASCII.GetString(text), NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) throw Corrupt("bad score");
        return d;
    }

    private void LoadStream(byte type, ValueSink sink)
    {
        ulong nodes = ReadCount(2);
        var stream = new List<(StreamId Id, byte[][] Pairs)>();
        for (ulong i = 0; i < nodes; i++)
        {
            byte[] nodeKey = ReadString();
            if (nodeKey.Length != 16) throw Corrupt("Stream node key entry is not the size of a stream ID");
            var master = new StreamId(BinaryPrimitives.ReadUInt64BigEndian(nodeKey), BinaryPrimitives.ReadUInt64BigEndian(nodeKey.AsSpan(8)));
            List<RdbBlobs.LpValue> lp = RdbBlobs.ListpackValues(ReadString());
            if (lp.Count == 0) throw Corrupt("Empty listpack inside stream");
            RdbBlobs.StreamListpack(lp, master, stream);
        }
        ulong length = ReadLength();
        var lastId = new StreamId(ReadLength(), ReadLength());
        StreamId maxDeleted = StreamId.Zero;
        ulong entriesAdded = length;
        if (type >= Rdb.TypeStreamListpacks2)
        {
            ReadLength(); // first_id: follows from the entries
            ReadLength();
            maxDeleted = new StreamId(ReadLength(), ReadLength());
            entriesAdded = ReadLength();
        }
        if ((ulong)stream.Count != length) throw Corrupt($"stream length {length} but {stream.Count} live entries");
        ulong groups = ReadCount(2);
        Span<byte> raw = stackalloc byte[16];
        var groupList = new List<(byte[] Name, StreamId LastId, long EntriesRead, List<(StreamId Id, long Time, long Count)> Pel,
            List<(byte[] Name, long SeenTime, List<StreamId> Pel)> Consumers)>();
        for (ulong g = 0; g < groups; g++)
        {
            byte[] name = ReadString();
            var groupLast = new StreamId(ReadLength(), ReadLength());
            long entriesRead = type >= Rdb.TypeStreamListpacks2 ? unchecked((long)ReadLength()) : StreamGroup.InvalidEntriesRead;
            ulong pelCount = ReadCount(17);
            var pel = new List<(StreamId, long, long)>((int)Math.Min(pelCount, 1 << 16));
            for (ulong p = 0; p < pelCount; p++)
            {
                ReadExact(raw);
                var id = new StreamId(BinaryPrimitives.ReadUInt64BigEndian(raw), BinaryPrimitives.ReadUInt64BigEndian(raw[8..]));
                long time = ReadInt64LittleEndian();
                long count = unchecked((long)ReadLength());
                pel.Add((id, time, count));
            }
            ulong consumerCount = ReadCount(9);
            var consumers = new List<(byte[], long, List<StreamId>)>();
            for (ulong c = 0; c < consumerCount; c++)
            {
                byte[] consumer = ReadString();
                long seenTime = ReadInt64LittleEndian();
                if (type >= Rdb.TypeStreamListpacks3) ReadInt64LittleEndian(); // active-time
                ulong owned = ReadCount(16);
                var ids = new List<StreamId>((int)Math.Min(owned, 1 << 16));
                for (ulong p = 0; p < owned; p++)
                {
                    ReadExact(raw);
                    var id = new StreamId(BinaryPrimitives.ReadUInt64BigEndian(raw), BinaryPrimitives.ReadUInt64BigEndian(raw[8..]));
                    if (!pel.Exists(x => x.Item1 == id)) throw Corrupt("Consumer entry not found in group global PEL");
                    ids.Add(id);
                }
                consumers.Add((consumer, seenTime, ids));
            }
            groupList.Add((name, groupLast, entriesRead, pel, consumers));
        }
        sink.Stream(stream, lastId, (long)entriesAdded, maxDeleted, groupList);
    }

    private static string Printable(byte[] key) => Encoding.UTF8.GetString(key.AsSpan(0, Math.Min(key.Length, 128)));

    /// <summary>Collects a value's elements and issues the commands that build it, in batches.</summary>
    private sealed class ValueSink(RdbLoader loader, byte[] key, bool skip)
    {
        private readonly List<byte[]> _pending = [];
        private string? _command;
        private bool _created;
        private long _elements;

        public void String(byte[] value)
        {
            if (skip) return;
            loader.Execute([B("SET"), key, value]);
            _created = true;
        }

        public void Element(char kind, byte[] value) => Add(kind == 'l' ? "RPUSH" : "SADD", value, null);

        public void Pair(byte[] field, byte[] value) => Add("HSET", field, value);

        public void Scored(byte[] member, double score) =>
            Add("ZADD", Encoding.ASCII.GetBytes(KvZSet.FormatRoundTrip(score)), member);

        private void Add(string command, byte[] a, byte[]? b)
        {
            if (skip) return;
            _command = command;
            _elements++;
            _pending.Add(a);
            if (b is not null) _pending.Add(b);
            if (_pending.Count >= ElementsPerCommand * 2) Flush();
        }

        private void Flush()
        {
            if (_pending.Count == 0) return;
            var args = new List<byte[]>(_pending.Count + 2) { B(_command!), key };
            args.AddRange(_pending);
            loader.Execute(args);
            _pending.Clear();
            _created = true;
        }

        public void Stream(List<(StreamId Id, byte[][] Pairs)> entries, StreamId lastId, long entriesAdded, StreamId maxDeleted,
            List<(byte[] Name, StreamId LastId, long EntriesRead, List<(StreamId Id, long Time, long Count)> Pel, List<(byte[] Name, long SeenTime, List<StreamId> Pel)> Consumers)> groups)
        {
            if (skip) return;
            if (entries.Count == 0)
            {
                loader.Execute([B("XADD"), key, B("MAXLEN"), B("0"), B("0-1"), B("x"), B("y")]);
            }
            foreach ((StreamId id, byte[][] pairs) in entries)
            {
                if (pairs.Length == 0) throw loader.Corrupt("stream entry without fields");
                var args = new List<byte[]>(3 + pairs.Length) { B("XADD"), key, id.ToBytes() };
                args.AddRange(pairs);
                loader.Execute(args);
            }
            StreamId setLast = lastId;
            loader.Execute([B("XSETID"), key, setLast.ToBytes(), B("ENTRIESADDED"), Num(entriesAdded), B("MAXDELETEDID"), maxDeleted.ToBytes()]);
            foreach (var g in groups)
            {
                loader.Execute([B("XGROUP"), B("CREATE"), key, g.Name, g.LastId.ToBytes(), B("ENTRIESREAD"), Num(g.EntriesRead)]);
                var owner = new Dictionary<StreamId, byte[]>();
                foreach (var c in g.Consumers)
                {
                    foreach (StreamId id in c.Pel) owner[id] = c.Name;
                    if (c.Pel.Count == 0) loader.Execute([B("XGROUP"), B("CREATECONSUMER"), key, g.Name, c.Name]);
                }
                foreach (var p in g.Pel)
                {
                    if (!owner.TryGetValue(p.Id, out byte[]? consumer)) continue; // no consumer owns it: Redis's deep check refuses it; dropped
                    loader.Execute([B("XCLAIM"), key, g.Name, consumer, B("0"), p.Id.ToBytes(), B("TIME"), Num(p.Time),
                        B("RETRYCOUNT"), Num(p.Count), B("JUSTID"), B("FORCE")]);
                }
            }

            // The consumers' seen-times, which the commands above set to the load time.
            if (groups.Count > 0 && loader._store.Database(loader._session.Db).TryGetValue(key, out KvEntry? e) && e.Value is KvStream built)
            {
                foreach (var g in groups)
                {
                    StreamGroup? group = built.FindGroup(g.Name);
                    foreach (var c in g.Consumers)
                    {
                        if (group?.FindConsumer(c.Name) is { } consumer) consumer.SeenTime = c.SeenTime;
                    }
                }
            }
            _created = true;
        }

        private static byte[] Num(long v) => Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));

        /// <summary>Issues what is pending; false when the value was empty (nothing was created).</summary>
        public bool Finish()
        {
            if (skip) return false;
            Flush();
            // A set, hash or sorted set with the same member twice: Redis refuses it ("Duplicate ... detected").
            if (_created && _command is "SADD" or "HSET" or "ZADD"
                && loader._store.Database(loader._session.Db).TryGetValue(key, out KvEntry? e) && e.Value is KvObject o && o.Length != _elements)
            {
                throw loader.Corrupt(_command switch { "SADD" => "Duplicate set members detected", "HSET" => "Duplicate hash fields detected", _ => "Duplicate zset fields detected" });
            }
            return _created;
        }
    }

    private void Execute(IReadOnlyList<byte[]> args)
    {
        byte[][] array = args as byte[][] ?? [.. args];
        KvCommand command = KvCommand.Create(array);
        _reply.ResetWrittenCount();
        _store.Execute(_session, command, _now, new RespWriter(_reply), aof: null);
        if (_reply.WrittenCount > 0 && _reply.WrittenSpan[0] == (byte)'-')
        {
            string error = Encoding.UTF8.GetString(_reply.WrittenSpan[1..]).TrimEnd('\r', '\n');
            throw Corrupt($"the value of a key was refused ({Encoding.ASCII.GetString(array[0])}: {error})");
        }
    }

    // ------------------------------------------------------------------ primitives

    /// <summary>A count of items each taking at least <paramref name="minBytes"/> bytes: refused when the rest of the file
    /// cannot hold them (so a corrupt length never allocates).</summary>
    private ulong ReadCount(int minBytes)
    {
        ulong n = ReadLength();
        long remaining = _fileLength - (_consumed + _bufferPos);
        if (n > (ulong)Math.Max(0, remaining) / (ulong)minBytes) throw Corrupt($"a length of {n} items does not fit in the rest of the file");
        return n;
    }

    /// <summary>rdbLoadLen for a plain length (an encoded-string marker is an error here).</summary>
    private ulong ReadLength()
    {
        ulong v = ReadLength(out bool encoded);
        if (encoded) throw Corrupt("unexpected string encoding where a length was expected");
        return v;
    }

    private ulong ReadLength(out bool encoded)
    {
        encoded = false;
        byte b = ReadByte();
        switch (b >> 6)
        {
            case 0:
                return (ulong)(b & 0x3F);
            case 1:
                return ((ulong)(b & 0x3F) << 8) | ReadByte();
            case 3:
                encoded = true;
                return (ulong)(b & 0x3F);
        }
        Span<byte> tmp = stackalloc byte[8];
        if (b == 0x80)
        {
            ReadExact(tmp[..4]);
            return BinaryPrimitives.ReadUInt32BigEndian(tmp);
        }
        if (b == 0x81)
        {
            ReadExact(tmp);
            return BinaryPrimitives.ReadUInt64BigEndian(tmp);
        }
        throw Corrupt($"Unknown length encoding {b} in rdbLoadLen()");
    }

    /// <summary>rdbGenericLoadStringObject: raw, integer-encoded or LZF-compressed.</summary>
    private byte[] ReadString()
    {
        ulong len = ReadLength(out bool encoded);
        if (encoded)
        {
            Span<byte> tmp = stackalloc byte[4];
            long v;
            switch (len)
            {
                case 0:
                    v = (sbyte)ReadByte();
                    break;
                case 1:
                    ReadExact(tmp[..2]);
                    v = BinaryPrimitives.ReadInt16LittleEndian(tmp);
                    break;
                case 2:
                    ReadExact(tmp);
                    v = BinaryPrimitives.ReadInt32LittleEndian(tmp);
                    break;
                case 3:
                    ulong compressed = ReadLength();
                    ulong plain = ReadLength();
                    if (compressed > (ulong)Math.Max(0, _fileLength - (_consumed + _bufferPos))) throw Corrupt("compressed string longer than the file");
                    if (plain == 0 || plain > (ulong)Array.MaxLength || plain > compressed * 512 + 64) throw Corrupt($"bad LZF lengths ({compressed} -> {plain})");
                    byte[] input = new byte[compressed];
                    ReadExact(input);
                    return RdbBlobs.LzfDecompress(input, (int)plain) ?? throw Corrupt("Invalid LZF compressed string");
                default:
                    throw Corrupt($"Unknown RDB string encoding type {len}");
            }
            return Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));
        }
        if (len > (ulong)Math.Max(0, _fileLength - (_consumed + _bufferPos)) || len > (ulong)Array.MaxLength) throw Corrupt($"a string of {len} bytes does not fit in the rest of the file");
        byte[] s = new byte[len];
        ReadExact(s);
        return s;
    }

    private long ReadInt64LittleEndian()
    {
        Span<byte> b = stackalloc byte[8];
        ReadExact(b);
        return BinaryPrimitives.ReadInt64LittleEndian(b);
    }

    private int ReadInt32LittleEndian()
    {
        Span<byte> b = stackalloc byte[4];
        ReadExact(b);
        return BinaryPrimitives.ReadInt32LittleEndian(b);
    }

    private byte ReadByte()
    {
        if (_bufferPos == _bufferEnd) Fill();
        return _buffer[_bufferPos++];
    }

    private void ReadExact(Span<byte> target, bool crc = true)
    {
        if (!crc) UpdateCrc();
        while (!target.IsEmpty)
        {
            if (_bufferPos == _bufferEnd) Fill();
            int n = Math.Min(target.Length, _bufferEnd - _bufferPos);
            _buffer.AsSpan(_bufferPos, n).CopyTo(target);
            _bufferPos += n;
            target = target[n..];
        }
        if (!crc) _crcFrom = _bufferPos; // the footer is not part of the checksum
    }

    private void UpdateCrc()
    {
        if (_verifyChecksum && _bufferPos > _crcFrom) _crc = KvDump.Crc64(_buffer.AsSpan(_crcFrom, _bufferPos - _crcFrom), _crc);
        _crcFrom = _bufferPos;
    }

    private void Fill()
    {
        UpdateCrc();
        _consumed += _bufferEnd;
        _bufferPos = _bufferEnd = _crcFrom = 0;
        int n = _input.Read(_buffer, 0, _buffer.Length);
        if (n <= 0) throw new EndOfStreamException();
        _bufferEnd = n;
    }
}
