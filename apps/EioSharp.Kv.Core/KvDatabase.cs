namespace EioSharp.Kv;

/// <summary>The type of a value, as TYPE names it.</summary>
public enum KvType
{
    /// <summary>A byte string (also integers, bitmaps and HyperLogLogs, as in Redis).</summary>
    String,
    /// <summary>A list.</summary>
    List,
    /// <summary>A set.</summary>
    Set,
    /// <summary>A sorted set.</summary>
    ZSet,
    /// <summary>A hash.</summary>
    Hash,
    /// <summary>A stream.</summary>
    Stream,
}

/// <summary>A value that is not a string: a list, set, sorted set, hash or stream.</summary>
/// <remarks>
/// Strings are stored as plain <c>byte[]</c> (never modified in place); every other type derives from this class and
/// is mutated in place by the store owner only.
/// <para><b>AOF</b>: <see cref="WriteRewrite"/> emits the commands that rebuild the value (used by BGREWRITEAOF,
/// DUMP/RESTORE payloads and COPY checks). <see cref="Clone"/> gives a deep copy that the store never touches, which
/// is what a background rewrite serializes while the store keeps running.</para>
/// </remarks>
public abstract class KvObject
{
    /// <summary>The type, as TYPE names it.</summary>
    public abstract KvType Type { get; }

    /// <summary>Redis's name of the equivalent representation (OBJECT ENCODING): listpack, intset, hashtable, skiplist, quicklist, stream.</summary>
    public abstract string Encoding { get; }

    /// <summary>Number of elements (fields, members, entries); a value with none is removed from the keyspace.</summary>
    public abstract long Length { get; }

    /// <summary>A deep copy (elements are immutable byte arrays and may be shared).</summary>
    public abstract KvObject Clone();

    /// <summary>Writes the commands that rebuild this value under <paramref name="key"/> (variadic commands in chunks), without its expiry.</summary>
    public abstract void WriteRewrite(ReadOnlySpan<byte> key, System.Buffers.IBufferWriter<byte> output);

    /// <summary>Approximate bytes held by the value (MEMORY USAGE), including per-element overhead.</summary>
    public abstract long EstimateBytes();
}

/// <summary>How OBJECT ENCODING names a string value, beyond what its bytes say (Redis keeps the encoding in the object).</summary>
internal enum KvStringEncoding : byte
{
    /// <summary>As Redis's tryObjectEncoding leaves it: <c>int</c> for a canonical integer, <c>embstr</c> up to 44 bytes, else <c>raw</c>.</summary>
    ByContent,
    /// <summary>Always <c>raw</c> (APPEND to an existing value, SETRANGE, SETBIT...).</summary>
    Raw,
    /// <summary>Never <c>int</c>: <c>embstr</c> up to 44 bytes, else <c>raw</c> (INCRBYFLOAT's result).</summary>
    NotInt,
}

/// <summary>One key of a database: its name, value, expiry and bookkeeping.</summary>
internal sealed class KvEntry(byte[] key, object value)
{
    public readonly byte[] Key = key;
    public object Value = value; // byte[] (string) or KvObject
    public long ExpireAt = -1;
    public int Slot = -1;
    public int VolatileIndex = -1;
    public uint AccessClock; // seconds since the store started, at the last access (OBJECT IDLETIME)
    public byte Frequency; // LFU counter (OBJECT FREQ); logarithmic like Redis's
    public KvStringEncoding StringEncoding; // how OBJECT ENCODING names a string value; reset when the value is replaced

    public KvType Type => Value is byte[] ? KvType.String : ((KvObject)Value).Type;
}

/// <summary>One of the numbered databases (SELECT): a dictionary of keys plus the tables that active expiry, RANDOMKEY and SCAN use.</summary>
/// <remarks><b>Thread safety</b>: none; owned by the store owner.</remarks>
internal sealed class KvDatabase
{
    public const int ScanCursorIndexBits = 40; // SCAN cursor = epoch << 40 | slot index
    private const int CompactMinSlots = 64; // below this, a sparse slot table costs nothing worth compacting

    public readonly Dictionary<byte[], KvEntry> Map;
    public readonly Dictionary<byte[], KvEntry>.AlternateLookup<ReadOnlySpan<byte>> Lookup;
    public readonly List<KvEntry> Volatile = []; // entries with an expiry, for active expiry sampling
    private readonly Stack<int> _freeSlots = new();
    public KvEntry?[] Slots = new KvEntry?[16]; // dense-ish table of entries: RANDOMKEY and SCAN cursors index it
    public int SlotCount;
    public long Epoch; // bumped when the slot table is compacted; SCAN cursors from older epochs restart
    public long DataBytes; // key and string value bytes

    public KvDatabase(int index)
    {
        Index = index;
        Map = new Dictionary<byte[], KvEntry>(ByteArrayComparer.Instance);
        Lookup = Map.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The database number (changes on SWAPDB).</summary>
    public int Index { get; set; }

    public int Count => Map.Count;

    public static long ValueBytes(object value) => value is byte[] b ? b.Length : 0;

    public KvEntry Add(byte[] key, object value, long expireAt)
    {
        var e = new KvEntry(key, value);
        Map.Add(key, e);
        DataBytes += key.Length + ValueBytes(value);
        int slot;
        if (_freeSlots.Count > 0)
        {
            slot = _freeSlots.Pop();
        }
        else
        {
            if (SlotCount == Slots.Length) Array.Resize(ref Slots, Slots.Length * 2);
            slot = SlotCount++;
        }
        Slots[slot] = e;
        e.Slot = slot;
        SetExpire(e, expireAt);
        return e;
    }

    public void Replace(KvEntry e, object value)
    {
        DataBytes += ValueBytes(value) - ValueBytes(e.Value);
        e.Value = value;
        e.StringEncoding = KvStringEncoding.ByContent;
    }

    public void SetExpire(KvEntry e, long expireAt)
    {
        if (expireAt < 0)
        {
            if (e.VolatileIndex >= 0)
            {
                int last = Volatile.Count - 1;
                KvEntry moved = Volatile[last];
                Volatile[e.VolatileIndex] = moved;
                moved.VolatileIndex = e.VolatileIndex;
                Volatile.RemoveAt(last);
                e.VolatileIndex = -1;
            }
            e.ExpireAt = -1;
            return;
        }
        if (e.VolatileIndex < 0)
        {
            e.VolatileIndex = Volatile.Count;
            Volatile.Add(e);
        }
        e.ExpireAt = expireAt;
    }

    public void Remove(KvEntry e)
    {
        Map.Remove(e.Key);
        SetExpire(e, -1);
        Slots[e.Slot] = null;
        _freeSlots.Push(e.Slot);
        e.Slot = -1;
        DataBytes -= e.Key.Length + ValueBytes(e.Value);
    }

    public void Clear()
    {
        Map.Clear();
        Volatile.Clear();
        _freeSlots.Clear();
        Slots = new KvEntry?[16];
        SlotCount = 0;
        Epoch = (Epoch + 1) & ((1L << (63 - ScanCursorIndexBits)) - 1);
        DataBytes = 0;
    }

    // Keeps the slot table at least a quarter full so RANDOMKEY finds a key in a few tries.
    // Compaction keeps the order of entries and bumps the epoch so that SCAN cursors restart.
    public void MaybeCompact()
    {
        if (SlotCount <= CompactMinSlots || (long)Map.Count * 4 >= SlotCount) return;
        int write = 0;
        for (int read = 0; read < SlotCount; read++)
        {
            KvEntry? e = Slots[read];
            if (e is null) continue;
            e.Slot = write;
            Slots[write++] = e;
        }
        Array.Clear(Slots, write, SlotCount - write);
        SlotCount = write;
        _freeSlots.Clear();
        int size = Math.Max(16, (int)Math.Min(Array.MaxLength, 2L * write));
        if (size < Slots.Length) Array.Resize(ref Slots, size);
        Epoch = (Epoch + 1) & ((1L << (63 - ScanCursorIndexBits)) - 1);
    }
}

/// <summary>A collection whose elements SORT can read: a list in order, a set's members, a sorted set's members by score.</summary>
internal interface IKvElements
{
    /// <summary>The elements, in the collection's natural order.</summary>
    IEnumerable<byte[]> Elements { get; }
}

/// <summary>A hash, as SORT's <c>BY</c>/<c>GET key->field</c> patterns read it.</summary>
internal interface IKvHashFields
{
    /// <summary>The value of <paramref name="field"/>, or null when the hash has no such field.</summary>
    byte[]? GetField(ReadOnlySpan<byte> field);
}
