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
/// Strings are stored as plain <c>byte[]</c> (overwritten in place only while no reference to them was handed out:
/// <see cref="KvEntry.Value"/>); every other type derives from this class and
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

    /// <summary>Drops growth slack of the value's arrays (listpacks, intsets, slot arrays); the server calls it when
    /// idle, before its compacting collection. Contents, order and SCAN cursors are unchanged.</summary>
    /// <returns>Bytes released (approximately).</returns>
    public virtual long TrimExcess() => 0;
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

/// <summary>A key held together with a value that is not packed into the key's array: a collection (<see cref="KvObject"/>)
/// or a string longer than <see cref="KvDatabase.PackedValueMaxBytes"/>.</summary>
internal sealed class KvKeyedValue(byte[] key, object value)
{
    public readonly byte[] Key = key;

    /// <summary>byte[] (string) or <see cref="KvObject"/>. Set it through <see cref="SetValue"/> (a new value drops the
    /// snapshot mark and the incompressibility proof).</summary>
    public object Value { get; private set; } = value;

    /// <summary>True while <see cref="Value"/> is a string array the database allocated for this row alone and no
    /// reference to it was handed out since (<see cref="KvEntry.Value"/> clears it): only then may a write overwrite the
    /// bytes in place (<see cref="KvDatabase.ReplaceLongString"/>). False for an array that came from elsewhere (a
    /// command's own argument, COPY, RESTORE, a load, APPEND...), which others may still hold.</summary>
    public bool OwnsString
    {
        get => (_state & OwnsBit) != 0;
        set => _state = (value ? _state | OwnsBit : _state & ~OwnsBit) & ~IncompressibleBit;
    }

    /// <summary>The epoch of the last leased snapshot (<see cref="KvStore.CreateSnapshotLease"/>) that took a reference to
    /// the owned string array, or 0. While a snapshot of that epoch or a later one is running
    /// (<see cref="KvSnapshotEpochs.OldestLive"/>), the array is not overwritten in place unless that snapshot's writer
    /// has passed <see cref="SnapshotIndex"/> (<see cref="KvSnapshotEpochs.MayOverwrite"/>); once every such snapshot
    /// ended, it is the row's own again.</summary>
    public int SnapshotEpoch => (int)((_state >> EpochShift) & IndexMask);

    /// <summary>The array's index in the entries of the snapshot of <see cref="SnapshotEpoch"/> (0 when none).</summary>
    public int SnapshotIndex => (int)(_state & IndexMask);

    // One word (issue 14, h140), so that a snapshot's writer on another thread can add the proof below with one
    // compare-and-swap against the mark it was given: SnapshotIndex (bits 0-30), OwnsString (bit 31), SnapshotEpoch
    // (bits 32-62; epochs are positive ints), and bit 63: the owned array's current bytes were proven incompressible by
    // LZF's bound (RdbBlobs.LzfCompress gives 0 for them with redis's budget, length - 4), so a later snapshot's writer
    // writes them raw without trying again. The object stays 64 bytes (2 references, 3 longs, one word).
    // Writes by the store's owner are plain whole-word stores; every one but the snapshot's mark (MarkSnapshot) clears
    // the proof. The writer's CAS succeeds only while the word is exactly (its epoch, owned, its index): any change of
    // the row's array or of its bytes by the owner first changes the epoch (SetValue, ResetSnapshotMark), and epochs are
    // never reused, so a proof lands only on the bytes it was made for (docs/rationale.md, h140).
    private const ulong OwnsBit = 1UL << 31, IndexMask = 0x7FFF_FFFF, IncompressibleBit = 1UL << 63;
    private const int EpochShift = 32;
    private ulong _state;

    /// <summary>Replaces the value (the store's owner): the snapshot mark and the incompressibility proof are dropped in
    /// the same store, before the new value is visible.</summary>
    /// <param name="value">byte[] (string) or <see cref="KvObject"/>.</param>
    /// <param name="ownsString">Whether the string array is the row's alone (<see cref="OwnsString"/>).</param>
    public void SetValue(object value, bool ownsString)
    {
        _state = ownsString ? OwnsBit : 0;
        Value = value;
    }

    /// <summary>Marks the owned array as taken by the leased snapshot <paramref name="epoch"/> at entry
    /// <paramref name="index"/> (the store's owner, while taking the snapshot); a proof of the bytes is kept (they did
    /// not change).</summary>
    public void MarkSnapshot(int epoch, int index) =>
        _state = (_state & (OwnsBit | IncompressibleBit)) | ((ulong)(uint)epoch << EpochShift) | ((ulong)(uint)index & IndexMask);

    /// <summary>Forgets the snapshot mark and the proof (the store's owner, when it overwrites the owned array's bytes in
    /// place: no running snapshot reads them any more, <see cref="KvSnapshotEpochs.MayOverwrite"/>).</summary>
    public void ResetSnapshotMark() => _state &= OwnsBit;

    /// <summary>Whether the array the leased snapshot <paramref name="epoch"/> took at entry <paramref name="index"/>
    /// is still this row's, unchanged, and proven incompressible (any thread; the snapshot's writer).</summary>
    public bool IsProvenIncompressible(int epoch, int index) => Volatile.Read(ref _state) == (Mark(epoch, index) | IncompressibleBit);

    /// <summary>Records that the bytes the leased snapshot <paramref name="epoch"/> took at entry <paramref name="index"/>
    /// are incompressible (the snapshot's writer, on its own thread): only if the row still holds that array with those
    /// bytes (the word is exactly that mark); otherwise nothing.</summary>
    /// <returns>Whether the proof was recorded.</returns>
    public bool TryRecordIncompressible(int epoch, int index)
    {
        ulong mark = Mark(epoch, index);
        return Interlocked.CompareExchange(ref _state, mark | IncompressibleBit, mark) == mark;
    }

    private static ulong Mark(int epoch, int index) => ((ulong)(uint)epoch << EpochShift) | OwnsBit | ((ulong)(uint)index & IndexMask);

    // The used-memory account of a collection value (docs/kv.md, "Memory limits"): bytes counted in the database's
    // DataBytes for it, and the last full estimate with the element count it was taken at.
    public long Accounted;
    private long _baseBytes, _baseLength;

    /// <summary>Back to the state of a new holder of <see cref="Value"/> (nothing accounted, no snapshot mark, not owning
    /// a string): for a holder kept by <see cref="KvDatabase.RemoveEmptiedRow"/> and added again under the same key.</summary>
    public void ResetForReuse()
    {
        Accounted = 0;
        _baseBytes = 0;
        _baseLength = 0;
        _state = 0; // no snapshot mark, no incompressibility proof, not owning a string
    }

    /// <summary>Brings <see cref="Accounted"/> up to date with the value and returns the change. A collection is
    /// re-estimated in full (<see cref="KvObject.EstimateBytes"/>) when it has at most 16 elements or its element count
    /// moved by more than an eighth since the last full estimate; otherwise that estimate is scaled by the element
    /// count. So the cost is amortized O(1) per element added or removed.</summary>
    public long Reaccount()
    {
        long bytes;
        if (Value is not KvObject o)
        {
            bytes = 0;
            _baseLength = 0;
        }
        else
        {
            long length = o.Length;
            if (length <= 16 || _baseLength == 0 || Math.Abs(length - _baseLength) * 8 > _baseLength)
            {
                bytes = o.EstimateBytes();
                _baseBytes = bytes;
                _baseLength = Math.Max(length, 1);
            }
            else
            {
                bytes = (long)((double)_baseBytes * length / _baseLength);
            }
        }
        long delta = bytes - Accounted;
        Accounted = bytes;
        return delta;
    }
}

/// <summary>A handle on one key of a database, valid during the command that looked it up: its name, value, expiry and
/// bookkeeping, read from (and written to) the database's row.</summary>
/// <remarks>
/// The database keeps no object per key (see <see cref="KvDatabase"/>); a lookup returns a new handle. Two handles on
/// the same key compare equal with <c>==</c>. After <see cref="KvDatabase.Remove"/> the handle keeps what the row held
/// (key, value, expiry, access clock, frequency, encoding), so a removed key can still be read (RENAME, MOVE,
/// notifications). A handle must not be kept across commands: rows move when the table is compacted between commands.
/// </remarks>
internal sealed partial class KvEntry
{
    private readonly KvDatabase _db;
    private int _row; // -1 once removed
    private object? _item; // the row's item, once removed
    private int _pos; // the row's record position in _item, once removed
    private uint _link, _lru; // the row's bits, once removed
    private long _expireAt; // once removed
    private byte[]? _key;
    private object? _valueOf; // the packed item _value was copied from (with _valuePos)
    private int _valuePos;
    private byte[]? _value;

    internal KvEntry(KvDatabase db, int row)
    {
        _db = db;
        _row = row;
    }

    internal int Row => _row;

    internal KvDatabase Database => _db;

    private object Item => _row >= 0 ? _db.ItemAt(_row) : _item!;

    private int Pos => _row >= 0 ? _db.PosAt(_row) : _pos;

    /// <summary>The access clock (the low 24 bits) and the LFU counter (the top 8) as one word: a touch reads and writes
    /// it once (§219).</summary>
    internal uint Lru
    {
        get => _row >= 0 ? _db.LruAt(_row) : _lru;
        set => SetLru(value);
    }

    private uint Link => _row >= 0 ? _db.LinkAt(_row) : _link;

    /// <summary>The key (a copy for a packed string: do not modify).</summary>
    public byte[] Key => _key ??= KvDatabase.KeyOf(Item, Pos);

    /// <summary><c>byte[]</c> for a string (a copy for a short string) or the <see cref="KvObject"/>. The array returned is
    /// never modified afterwards: taking it marks a long string as handed out, so the next write of the key allocates a
    /// new array instead of overwriting this one (<see cref="KvDatabase.ReplaceLongString"/>); read
    /// <see cref="StringSpan"/> instead when the bytes are only read within the command.</summary>
    public object Value
    {
        get
        {
            object item = Item;
            if (item is KvKeyedValue kv)
            {
                kv.OwnsString = false;
                return kv.Value;
            }
            int pos = Pos;
            if (!ReferenceEquals(item, _valueOf) || pos != _valuePos)
            {
                _value = KvDatabase.PackedValue((byte[])item, pos).ToArray();
                _valueOf = item;
                _valuePos = pos;
            }
            return _value!;
        }
    }

    /// <summary>The value for a snapshot: as <see cref="Value"/>, except that a long string the row owns stays the row's
    /// own once the snapshot of epoch <paramref name="epoch"/> ended or passed the entry at <paramref name="index"/> (it
    /// is only marked with the epoch and the index) instead of being
    /// handed out for good. <paramref name="epoch"/> 0: handed out for good (a snapshot nobody releases).</summary>
    internal object SnapshotValue(int epoch, int index = 0) => SnapshotValue(epoch, index, out _);

    /// <summary>As <see cref="SnapshotValue(int, int)"/>; <paramref name="marked"/> is the row when it was marked (a long
    /// string the row owns: the snapshot's writer may record a proof of its bytes there,
    /// <see cref="KvKeyedValue.TryRecordIncompressible"/>), else null.</summary>
    internal object SnapshotValue(int epoch, int index, out KvKeyedValue? marked)
    {
        marked = null;
        if (epoch == 0 || Item is not KvKeyedValue { OwnsString: true } kv) return Value;
        kv.MarkSnapshot(epoch, index);
        marked = kv;
        return kv.Value;
    }

    /// <summary>Absolute expiry in Unix ms, or -1.</summary>
    public long ExpireAt => _row >= 0 ? _db.ExpireAtOf(_row) : _expireAt;

    /// <summary>The access clock at the last access: the Unix seconds of the command's time, modulo 2^24 (Redis's 24-bit
    /// LRU clock).</summary>
    public uint AccessClock
    {
        get => Lru & KvDatabase.ClockMask;
        set => SetLru((Lru & ~KvDatabase.ClockMask) | (value & KvDatabase.ClockMask));
    }

    /// <summary>LFU counter (OBJECT FREQ), logarithmic like Redis's.</summary>
    public byte Frequency
    {
        get => (byte)(Lru >> 24);
        set => SetLru((Lru & KvDatabase.ClockMask) | ((uint)value << 24));
    }

    /// <summary>How OBJECT ENCODING names a string value; reset when the value is replaced.</summary>
    public KvStringEncoding StringEncoding
    {
        get => (KvStringEncoding)((Link >> KvDatabase.EncodingShift) & 3);
        set
        {
            uint link = (Link & ~(3u << KvDatabase.EncodingShift)) | ((uint)value << KvDatabase.EncodingShift);
            if (_row >= 0) _db.SetLinkBits(_row, link);
            else _link = link;
        }
    }

    public KvType Type => Item is KvKeyedValue { Value: KvObject o } ? o.Type : KvType.String;

    private void SetLru(uint lru)
    {
        if (_row >= 0) _db.SetLru(_row, lru);
        else _lru = lru;
    }

    /// <summary>Drops the copy of a packed value <see cref="Value"/> cached (its row was overwritten in place).</summary>
    /// <summary>Points this handle at <paramref name="row"/> afresh (the database's reused handle: <see cref="KvDatabase.ReusedHandle"/>).</summary>
    internal void Retarget(int row)
    {
        _row = row;
        _item = null;
        _key = null;
        _valueOf = null;
        _value = null;
    }

    internal void ForgetValueCopy()
    {
        _valueOf = null;
        _value = null;
    }

    internal void Detach(object item, int pos, uint link, uint lru, long expireAt)
    {
        _key ??= KvDatabase.KeyOf(item, pos);
        _item = item;
        _pos = pos; // a dropped record's bytes stay as they are: pages are appended to, never rewritten in place for another key
        _link = link;
        _lru = lru;
        _expireAt = expireAt;
        _row = -1;
    }

    public static bool operator ==(KvEntry? a, KvEntry? b) =>
        ReferenceEquals(a, b) || (a is not null && b is not null && a._row >= 0 && a._row == b._row && ReferenceEquals(a._db, b._db));

    public static bool operator !=(KvEntry? a, KvEntry? b) => !(a == b);

    public override bool Equals(object? obj) => obj is KvEntry e && this == e;

    public override int GetHashCode() => HashCode.Combine(_db, _row);
}

/// <summary>Sums over the databases of one store, kept as the databases change (issue 14): the owner publishes the
/// keyspace statistics after every round (<c>KvServerStats.UpdateFrom</c>) and the used memory is read around writes,
/// so these must not walk the 16 databases each time.</summary>
/// <remarks>Owned by the store owner (no thread safety). A plain class shared by reference: the counters are value
/// fields, so maintaining them stores no reference (no write barrier).</remarks>
internal sealed class KvKeyspaceTotals
{
    /// <summary>Keys in every database.</summary>
    public long Keys;

    /// <summary>Keys with an expiry in every database.</summary>
    public long Expiring;

    /// <summary><see cref="KvDatabase.DataBytes"/> summed over the databases.</summary>
    public long DataBytes;

    /// <summary>Bumped whenever a database's key count or expiring count changes, or databases swap (SWAPDB): while it
    /// stands still the per-database counts (INFO keyspace) are what they were.</summary>
    public long Changes;

    /// <summary>The databases whose counts ever changed, one bit per database index when the change happened (bit
    /// <c>i</c> for database <c>i</c> below 63, bit 63 for 63 and up); set with every <see cref="Changes"/> bump and never
    /// cleared, so any number of readers may use it: a database whose bit is clear has held no key since the store
    /// began, and INFO keyspace's walk skips it (<see cref="KvServerStats.UpdateFrom"/>).</summary>
    public ulong ChangedDatabases;

    /// <summary>The bit of database <paramref name="index"/> in <see cref="ChangedDatabases"/>.</summary>
    public static ulong DatabaseBit(int index) => 1UL << Math.Min(index, 63);

    /// <summary>Records that the counts of database <paramref name="index"/> changed.</summary>
    public void CountsChanged(int index)
    {
        Changes++;
        ChangedDatabases |= DatabaseBit(index);
    }
}

/// <summary>One of the numbered databases (SELECT): the key table, plus the expiry side table that active expiry samples.</summary>
/// <remarks>
/// <para><b>Layout</b> (docs/kv.md, "Memory"): keys live in rows, an array of structs (24 bytes each: the item
/// reference, its record's position in a shared page, a chain link with flag bits, and a packed LRU clock + LFU counter), indexed by a power-of-two bucket array
/// of row numbers (chaining through the rows' links). A string key and a value of at most
/// <see cref="PackedValueMaxBytes"/> bytes share one <c>byte[]</c> (varint key length, key bytes, value bytes); any
/// other value sits in a <see cref="KvKeyedValue"/> next to its key. Expiries are in a side table keyed by row, so
/// only volatile keys pay for one. There is no per-key object on the common path.</para>
/// <para><b>SCAN and RANDOMKEY</b> index the rows: a row keeps its index while the key lives (a freed row is reused by a
/// later key), so a scan by row index returns every key present during the whole scan. When fewer than a quarter of
/// the rows are used the rows are compacted (order kept) between commands and <see cref="Epoch"/> changes: a cursor of
/// an older epoch restarts the scan (duplicates possible, never a miss).</para>
/// <para><b>Thread safety</b>: none; owned by the store owner.</para>
/// </remarks>
internal sealed partial class KvDatabase
{
    public const int ScanCursorIndexBits = 40; // SCAN cursor = epoch << 40 | row index
    internal const int PackedValueMaxBytes = 512; // longer strings get their own array (GET copies a packed value)
    internal const uint ClockMask = 0xFFFFFF; // 24-bit access clock; the top byte of Lru is the LFU counter
    internal const int EncodingShift = 29; // Link bits 29-30: KvStringEncoding; bit 31: has an expiry
    private const uint LinkMask = (1u << EncodingShift) - 1; // Link bits 0-28: next row + 1 in the chain or free list
    private const uint VolatileBit = 1u << 31;
    private const int MaxRows = 1 << EncodingShift;
    private const int CompactMinSlots = 64; // below this, a sparse table costs nothing worth compacting
    private const int MinRows = 16;

    private struct Row
    {
        public object? Item; // a record page (byte[], the record at Pos) or KvKeyedValue; null for a free row
        public int Pos; // where the row's record starts in Item (a packed string; 0 otherwise)
        public uint Link;
        public uint Lru;
    }

    private struct VolatileSlot
    {
        public long At;
        public int Index; // in _volatileRows
    }

    private Row[] _rows = new Row[MinRows];
    private int[] _buckets = new int[MinRows]; // first row + 1 of each chain
    private int _used; // rows [0, _used) were handed out
    private int _count;
    private int _freeHead; // first free row + 1
    private readonly Dictionary<int, VolatileSlot> _expires = [];
    private readonly List<int> _volatileRows = []; // rows with an expiry, for active expiry sampling
    public long Epoch; // bumped when the rows are compacted; SCAN cursors from older epochs restart
    private long _dataBytes;

    /// <summary>Key and string value bytes (collections: their last account). Every change is added to
    /// <see cref="Totals"/> as well, so that the store's sums need no walk over the databases.</summary>
    public long DataBytes
    {
        get => _dataBytes;
        set
        {
            Totals.DataBytes += value - _dataBytes;
            _dataBytes = value;
        }
    }

    public KvDatabase(int index) : this(index, new KvSnapshotEpochs(), new KvKeyspaceTotals())
    {
    }

    /// <summary>A database whose in-place string writes respect the running snapshots of <paramref name="epochs"/>
    /// and whose counts are summed into <paramref name="totals"/> (both shared by all the databases of a store).</summary>
    public KvDatabase(int index, KvSnapshotEpochs epochs, KvKeyspaceTotals totals)
    {
        Index = index;
        Epochs = epochs;
        Totals = totals;
    }

    /// <summary>The sums over the store's databases that this database adds to (<see cref="KvKeyspaceTotals"/>).</summary>
    public KvKeyspaceTotals Totals { get; }

    /// <summary>The store's running leased snapshots (see <see cref="ReplaceLongString"/>).</summary>
    public KvSnapshotEpochs Epochs { get; }

    /// <summary>The database number (changes on SWAPDB).</summary>
    public int Index { get; set; }

    public int Count => _count;

    /// <summary>Lookups by key (kept as a member so that callers read <c>db.Lookup.TryGetValue(key, out e)</c>).</summary>
    public KvDatabase Lookup => this;

    /// <summary>Lookups by key array (tests).</summary>
    public MapView Map => new(this);

    /// <summary>Rows handed out (used or free): the range of SCAN cursors and RANDOMKEY picks.</summary>
    public int SlotCount => _used;

    /// <summary>The key in a row, or null for a free row: <c>db.Slots[i]</c> for i in [0, <see cref="SlotCount"/>).</summary>
    public SlotView Slots => new(this);

    /// <summary>The keys with an expiry: <c>db.Volatile.Count</c>, <c>db.Volatile[i]</c>.</summary>
    public VolatileView Volatile => new(this);

    public readonly struct MapView(KvDatabase db)
    {
        public KvEntry this[byte[] key] => db.TryGetValue(key, out KvEntry? e) ? e : throw new KeyNotFoundException();
    }

    public readonly struct SlotView(KvDatabase db)
    {
        public KvEntry? this[long row] => db._rows[row].Item is null ? null : new KvEntry(db, (int)row);
    }

    public readonly struct VolatileView(KvDatabase db)
    {
        public int Count => db._volatileRows.Count;

        public KvEntry this[int i] => new(db, db._volatileRows[i]);
    }

    public static long ValueBytes(object value) => value is byte[] b ? b.Length : 0;

    public bool TryGetValue(ReadOnlySpan<byte> key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KvEntry? e)
    {
        int row = FindRow(key);
        e = row < 0 ? null : new KvEntry(this, row);
        return row >= 0;
    }

    public bool ContainsKey(ReadOnlySpan<byte> key) => FindRow(key) >= 0;

    private KvEntry? _reusedHandle;

    /// <summary>A handle on the live key of <paramref name="row"/> that is the same object at every call (no allocation):
    /// for a fast path that uses it within one step and hands it to nobody (GET's access bookkeeping). The next call
    /// retargets it; never remove the key through it (a removed handle keeps the row's contents).</summary>
    internal KvEntry ReusedHandle(int row)
    {
        KvEntry handle = _reusedHandle ??= new KvEntry(this, row);
        handle.Retarget(row);
        return handle;
    }

    public KvEntry Add(byte[] key, object value, long expireAt) => Add(key.AsSpan(), key, value, expireAt);

    public KvEntry Add(ReadOnlySpan<byte> key, object value, long expireAt) => Add(key, null, value, expireAt);

    private KvEntry Add(ReadOnlySpan<byte> key, byte[]? keyArray, object value, long expireAt)
    {
        object item = MakeItem(key, keyArray, value, out int pos);
        return AddItem(key, item, pos, key.Length + ValueBytes(value), expireAt);
    }

    // Links a new row holding item (its record at pos; its key is key) into the table; dataBytes: what it adds to DataBytes.
    private KvEntry AddItem(ReadOnlySpan<byte> key, object item, int pos, long dataBytes, long expireAt) =>
        new(this, AddItemRow(key, item, pos, dataBytes, expireAt));

    /// <summary>As <see cref="Add(ReadOnlySpan{byte}, object, long)"/> for a collection <paramref name="value"/>, without a
    /// <see cref="KvEntry"/> handle: the new key's row.</summary>
    internal int AddRow(ReadOnlySpan<byte> key, KvObject value, long expireAt) =>
        AddItemRow(key, new KvKeyedValue(key.ToArray(), value), 0, key.Length, expireAt);

    /// <summary>Adds <paramref name="key"/> holding the value of <paramref name="kept"/>, a holder of that key that
    /// <see cref="TakeSpareList"/> gave back (its key array and list reused); returns the new key's row.</summary>
    internal int AddKeptRow(ReadOnlySpan<byte> key, KvKeyedValue kept, long expireAt) => AddItemRow(key, kept, 0, key.Length, expireAt);

    private int AddItemRow(ReadOnlySpan<byte> key, object item, int pos, long dataBytes, long expireAt)
    {
        int row;
        if (_freeHead != 0)
        {
            row = _freeHead - 1;
            _freeHead = (int)(_rows[row].Link & LinkMask);
        }
        else
        {
            if (_used == _rows.Length) Grow();
            row = _used++;
        }
        ref Row r = ref _rows[row];
        r.Item = item;
        r.Pos = pos;
        r.Lru = 0;
        int b = Hash(key) & (_buckets.Length - 1);
        r.Link = (uint)_buckets[b];
        _buckets[b] = row + 1;
        _count++;
        Totals.Keys++;
        Totals.CountsChanged(Index);
        DataBytes += dataBytes;
        if (r.Item is KvKeyedValue { Value: KvObject } added) DataBytes += added.Reaccount();
        if (expireAt >= 0) SetExpireRow(row, expireAt);
        return row;
    }

    public void Replace(KvEntry e, object value)
    {
        int row = e.Row;
        ref Row r = ref _rows[row];
        object old = r.Item!;
        DataBytes += ValueBytes(value) - ValueBytesOf(old, r.Pos);
        if (old is KvKeyedValue kv && !IsPackable(value))
        {
            kv.SetValue(value, ownsString: false); // the caller's array: it may hold it (or have logged it)
            DataBytes += kv.Reaccount();
        }
        else
        {
            if (old is KvKeyedValue dropped) DataBytes -= dropped.Accounted;
            int oldPos = r.Pos;
            r.Item = MakeItem(KeySpan(old, oldPos), (old as KvKeyedValue)?.Key, value, out r.Pos);
            DropRecord(old, oldPos); // after the copy of its key (a dropped record keeps its bytes)
            if (r.Item is KvKeyedValue { Value: KvObject } made) DataBytes += made.Reaccount();
        }
        r.Link &= ~(3u << EncodingShift);
    }

    public void SetExpire(KvEntry e, long expireAt) => SetExpireRow(e.Row, expireAt);

    /// <summary>Brings the used-memory account of a collection key up to date after a command changed it in place.</summary>
    public void Reaccount(ReadOnlySpan<byte> key)
    {
        int row = FindRow(key);
        if (row >= 0 && _rows[row].Item is KvKeyedValue kv) DataBytes += kv.Reaccount();
    }

    /// <summary>A random row that holds a key, or -1 (after a few misses on a sparse table, or when empty): eviction sampling.</summary>
    internal int RandomRow(Random random)
    {
        if (_count == 0) return -1;
        for (int tries = 0; tries < 64; tries++)
        {
            int row = random.Next(_used);
            if (_rows[row].Item is not null) return row;
        }
        for (int row = random.Next(_used), n = 0; n < _used; n++, row = row + 1 == _used ? 0 : row + 1)
        {
            if (_rows[row].Item is not null) return row;
        }
        return -1;
    }

    public void Remove(KvEntry e)
    {
        int row = e.Row;
        ref Row r = ref _rows[row];
        e.Detach(r.Item!, r.Pos, r.Link, r.Lru, ExpireAtOf(row));
        RemoveRow(row);
    }

    /// <summary>Removes the key of <paramref name="row"/> without a handle (DEL and UNLINK by row, issue 14); the row is
    /// free afterwards.</summary>
    internal void RemoveRow(int row)
    {
        ref Row r = ref _rows[row];
        object item = r.Item!;
        int pos = r.Pos;
        SetExpireRow(row, -1);
        ReadOnlySpan<byte> key = KeySpan(item, pos);
        DataBytes -= key.Length + ValueBytesOf(item, pos) + ((item as KvKeyedValue)?.Accounted ?? 0);
        DropRecord(item, pos);
        int b = Hash(key) & (_buckets.Length - 1);
        uint next = r.Link & LinkMask;
        if (_buckets[b] == row + 1)
        {
            _buckets[b] = (int)next;
        }
        else
        {
            int prev = _buckets[b] - 1;
            while ((_rows[prev].Link & LinkMask) != (uint)(row + 1)) prev = (int)(_rows[prev].Link & LinkMask) - 1;
            _rows[prev].Link = (_rows[prev].Link & ~LinkMask) | next;
        }
        r.Item = null;
        r.Pos = 0;
        r.Lru = 0;
        r.Link = (uint)_freeHead;
        _freeHead = row + 1;
        _count--;
        Totals.Keys--;
        Totals.CountsChanged(Index);
    }

    // ---------------------------------------------------------------- emptied lists kept for their key's next push

    // A list emptied by a pop is deleted (Redis keeps no empty collection) and, in a queue's usual life, created again
    // by the next push under the same key: a BLPOP/LPUSH ping-pong does both for each of its two keys every round trip.
    // The holder of such a list (its KvKeyedValue, the key's array and the KvList object) is kept here, reset to a new
    // list's state, and taken back by the next list created under that key (KvStore.AddListKey) instead of four new
    // objects (~250 B). Safe because nothing outlives a command holding a removed key's holder or value: handles
    // (KvEntry) are per command, snapshots copy collections (KvObject.Clone) and share only the key array, which is
    // immutable and reused only for the same key bytes.
    private const int SpareListsKept = 4;
    private readonly KvKeyedValue?[] _spareLists = new KvKeyedValue?[SpareListsKept];
    private int _spareNext;

    /// <summary>Removes the key of <paramref name="row"/>, a collection the command emptied, as <see cref="RemoveRow"/>;
    /// a list in its small form keeps its holder for the key's next list (<see cref="TakeSpareList"/>).</summary>
    internal void RemoveEmptiedRow(int row)
    {
        object item = _rows[row].Item!;
        RemoveRow(row);
        if (item is KvKeyedValue { Value: KvList list } kv && list.TryResetForReuse())
        {
            kv.ResetForReuse();
            _spareLists[_spareNext] = kv;
            _spareNext = (_spareNext + 1) % SpareListsKept;
        }
    }

    /// <summary>A holder of an emptied list kept for <paramref name="key"/> by <see cref="RemoveEmptiedRow"/> (its value an
    /// empty <see cref="KvList"/> in a new list's state), taken; null when none is kept for that key.</summary>
    internal KvKeyedValue? TakeSpareList(ReadOnlySpan<byte> key)
    {
        KvKeyedValue?[] spares = _spareLists;
        for (int i = 0; i < spares.Length; i++)
        {
            if (spares[i] is { } kv && kv.Key.AsSpan().SequenceEqual(key))
            {
                spares[i] = null;
                return kv;
            }
        }
        return null;
    }

    /// <summary>Number of emptied lists' holders kept (tests).</summary>
    internal int SpareListCount => _spareLists.Count(static kv => kv is not null);

    private void DropSpareLists() => Array.Clear(_spareLists);

    public void Clear()
    {
        DropSpareLists();
        Totals.Keys -= _count;
        Totals.Expiring -= _volatileRows.Count;
        Totals.CountsChanged(Index);
        _rows = new Row[MinRows];
        _buckets = new int[MinRows];
        _used = _count = _freeHead = 0;
        _page = null;
        _pageUsed = 0;
        _pageBytes = _deadBytes = 0;
        _expires.Clear();
        _volatileRows.Clear();
        Epoch = (Epoch + 1) & ((1L << (63 - ScanCursorIndexBits)) - 1);
        DataBytes = 0;
    }

    /// <summary>Whether <see cref="MaybeCompact"/> may have something to do (its two conditions' first tests, inline:
    /// the store tests this after every command before calling it, §221).</summary>
    public bool MayNeedCompaction
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => _deadBytes >= CompactPagesMinDeadBytes || (_used > CompactMinSlots && (long)_count * 4 < _used);
    }

    // Keeps the table at least a quarter full so RANDOMKEY finds a key in a few tries and memory follows the keys.
    // Compaction keeps the order of keys and bumps the epoch so that SCAN cursors restart. Between commands only.
    public void MaybeCompact()
    {
        if (_deadBytes >= CompactPagesMinDeadBytes && _deadBytes * 2 >= _pageBytes) CompactPages();
        if (_used <= CompactMinSlots || (long)_count * 4 >= _used) return;
        int size = MinRows;
        while (size < _count * 2) size *= 2;
        var rows = new Row[Math.Max(size, MinRows)];
        var remap = _expires.Count > 0 ? new Dictionary<int, int>(_expires.Count) : null;
        int write = 0;
        for (int read = 0; read < _used; read++)
        {
            if (_rows[read].Item is null) continue;
            if (remap is not null && (_rows[read].Link & VolatileBit) != 0) remap[read] = write;
            rows[write++] = _rows[read];
        }
        if (remap is not null)
        {
            var expires = new List<KeyValuePair<int, VolatileSlot>>(_expires);
            _expires.Clear();
            foreach (KeyValuePair<int, VolatileSlot> pair in expires)
            {
                int moved = remap[pair.Key];
                _expires[moved] = pair.Value;
                _volatileRows[pair.Value.Index] = moved;
            }
        }
        _rows = rows;
        _used = write;
        _freeHead = 0;
        Rehash(rows.Length);
        Epoch = (Epoch + 1) & ((1L << (63 - ScanCursorIndexBits)) - 1);
    }

    /// <summary>Drops the growth slack of every collection value (<see cref="KvObject.TrimExcess"/>); between commands.</summary>
    /// <returns>Bytes released (approximately).</returns>
    public long TrimExcess()
    {
        DropSpareLists();
        long released = 0;
        for (int row = 0; row < _used; row++)
            if (_rows[row].Item is KvKeyedValue { Value: KvObject o }) released += o.TrimExcess();
        return released + TrimRows();
    }

    /// <summary>Drops the rows array's growth slack past the last row handed out. The array doubles as keys are added, so
    /// up to half of it (24 B a row) held no key: 6,336 of the 16,384 rows for 10,000 keys (152 KB), 48,576 for 1M keys
    /// (1.1 MB). Rows keep their indices (SCAN cursors, the buckets and the expiry side table are unchanged); the array
    /// keeps <see cref="RowsTrimGranule"/>-row steps so that the next few keys do not grow it at once, and the next key
    /// past its end grows it to the bucket count (a power of two) with no rehash (<see cref="Grow"/>).</summary>
    /// <returns>Bytes released (approximately).</returns>
    internal long TrimRows()
    {
        int length = Math.Max(MinRows, (_used + RowsTrimGranule - 1) / RowsTrimGranule * RowsTrimGranule);
        int slack = _rows.Length - length;
        if (slack <= 0 || slack < _rows.Length / 8) return 0; // little to give back: not worth a copy
        Array.Resize(ref _rows, length);
        return (long)slack * System.Runtime.CompilerServices.Unsafe.SizeOf<Row>();
    }

    /// <summary>The rows array's length after <see cref="TrimRows"/> is a multiple of this.</summary>
    private const int RowsTrimGranule = 64;

    /// <summary>The rows array's length (tests: <see cref="TrimRows"/>).</summary>
    internal int RowCapacity => _rows.Length;

    // ---------------------------------------------------------------- rows (KvEntry)

    internal object ItemAt(int row) => _rows[row].Item!;

    /// <summary>Whether <paramref name="row"/> (in [0, <see cref="SlotCount"/>)) holds a key (<c>Slots[row]</c> without a handle).</summary>
    internal bool HasRow(int row) => _rows[row].Item is not null;

    /// <summary>Where the packed record of <paramref name="row"/> starts in <see cref="ItemAt"/> (a packed string's page).</summary>
    internal int PosAt(int row) => _rows[row].Pos;

    internal uint LruAt(int row) => _rows[row].Lru;

    internal uint LinkAt(int row) => _rows[row].Link;

    internal void SetLru(int row, uint lru) => _rows[row].Lru = lru;

    /// <summary>Sets the flag bits of a row's link (the chain part is kept).</summary>
    internal void SetLinkBits(int row, uint link)
    {
        ref Row r = ref _rows[row];
        r.Link = (r.Link & (LinkMask | VolatileBit)) | (link & ~(LinkMask | VolatileBit));
    }

    internal long ExpireAtOf(int row) => (_rows[row].Link & VolatileBit) == 0 ? -1 : _expires[row].At;

    /// <summary>This database's part of a snapshot (<see cref="KvStore.CreateSnapshotLease"/>, <see cref="KvStore.CreateSnapshot"/>):
    /// writes an entry for every live key from <paramref name="n"/> on, in row order, and returns the next free index.</summary>
    /// <param name="entries">The snapshot's entries (long enough for every key).</param>
    /// <param name="n">The first index to write.</param>
    /// <param name="epoch">The leased snapshot's epoch; 0: the long strings are handed out for good (<see cref="KvEntry.Value"/>).</param>
    /// <param name="now">Keys expired at this time are left out.</param>
    /// <param name="rows">Where a leased snapshot records the row of each long string array it marked (rented on first use).</param>
    /// <remarks>The same entries, marks and hand-outs as a pass through <see cref="ReusedHandle"/> and
    /// <see cref="KvEntry.SnapshotValue(int, int)"/> (issue 14, h208), with two costs fewer on the store's
    /// thread, which every connection waits for: each row is read once (no handle retargeted per key), and an owned long
    /// string's array is not touched at all (no type check of the value: the row's ownership says it is a
    /// <c>byte[]</c>), so the pass reads one object per key (the row's <see cref="KvKeyedValue"/>) and not the value's
    /// array as well, which copy-on-write recycling has moved away from it (another cache and TLB miss per key). Fully
    /// optimized from its first call: a rewrite calls it once per database, too rarely for tiering to reach it.</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal int SnapshotInto(KvSnapshotEntry[] entries, int n, int epoch, long now, ref KvKeyedValue?[]? rows)
    {
        Row[] table = _rows;
        int used = Math.Min(_used, table.Length);
        int index = Index;
        for (int i = 0; i < used; i++)
        {
            ref Row r = ref table[i];
            object? item = r.Item;
            if (item is null) continue;
            long expireAt = -1;
            if ((r.Link & VolatileBit) != 0)
            {
                expireAt = _expires[i].At;
                if (now > expireAt) continue; // expired, not removed yet: left out
            }
            byte[] key;
            object value;
            if (item is KvKeyedValue kv)
            {
                key = kv.Key;
                if (epoch != 0 && kv.OwnsString)
                {
                    kv.MarkSnapshot(epoch, n); // the row keeps the array: overwritten in place again once the writer passed it
                    (rows ??= Epochs.RentRows(entries.Length))[n] = kv;
                    value = kv.Value; // an owned string: a byte[], not read here
                }
                else
                {
                    kv.OwnsString = false; // handed out for good, as KvEntry.Value does
                    value = kv.Value;
                    if (value is KvObject o) value = o.Clone();
                }
            }
            else
            {
                byte[] page = (byte[])item;
                key = KeySpan(page, r.Pos).ToArray();
                value = PackedValue(page, r.Pos).ToArray();
            }
            entries[n++] = new KvSnapshotEntry(index, key, value, expireAt);
        }
        return n;
    }

    /// <summary>The key of an item (its record at <paramref name="pos"/>): a copy for a packed string.</summary>
    internal static byte[] KeyOf(object item, int pos) => item is KvKeyedValue kv ? kv.Key : KeySpan(item, pos).ToArray();

    internal static ReadOnlySpan<byte> KeySpan(object item, int pos)
    {
        if (item is KvKeyedValue kv) return kv.Key;
        byte[] page = (byte[])item;
        int start = pos + ReadLength(page, pos, out int keyLength);
        return page.AsSpan(start, keyLength);
    }

    /// <summary>The value bytes of the packed string record at <paramref name="pos"/> of <paramref name="page"/>.</summary>
    internal static ReadOnlySpan<byte> PackedValue(byte[] page, int pos) => PackedValueBytes(page, pos);

    private static Span<byte> PackedValueBytes(byte[] page, int pos)
    {
        int at = pos + ReadLength(page, pos, out int keyLength) + keyLength;
        at += ReadLength(page, at, out int valueLength);
        return page.AsSpan(at, valueLength);
    }

    // ---------------------------------------------------------------- record pages

    // A packed string is one record: varint key length, key, varint value length, value. Records are appended to
    // shared pages (byte[] of PageSize, below the large-object threshold, so the GC moves them like any small array)
    // instead of one array each: an array costs 24 bytes of header and up to 7 of padding, as much as a 10-byte key
    // and a 16-byte value (1M such keys: 56 MB of arrays before, 28 MB of pages now). A record never moves while its
    // row refers to it, except in CompactPages (between commands, like row compaction); a dropped record's bytes stay
    // as they are until the page itself is dropped, so a removed handle (KvEntry.Detach) still reads them. A record
    // bigger than StandaloneRecordBytes (a long key) gets an array of its own, at position 0.
    internal const int PageSize = 64 * 1024 - 64;
    private const int StandaloneRecordBytes = PageSize / 8;
    private const long CompactPagesMinDeadBytes = 1L << 20; // pages are rewritten once this much (and half) is dead
    private byte[]? _page; // the page records are appended to
    private int _pageUsed;
    private long _pageBytes; // bytes of the records in pages (live and dead)
    private long _deadBytes; // of those, bytes of records no row refers to

    /// <summary>Bytes of packed records in shared pages (live and dead), and of those the dead ones (tests, DEBUG).</summary>
    internal (long Total, long Dead) PageRecordBytes => (_pageBytes, _deadBytes);

    /// <summary>Number of times the pages were rewritten without their dead records (tests).</summary>
    internal long PageCompactions { get; private set; }

    private static int RecordSize(int keyLength, int valueLength) =>
        LengthSize(keyLength) + keyLength + LengthSize(valueLength) + valueLength;

    private static int RecordSizeAt(byte[] page, int pos)
    {
        int at = pos + ReadLength(page, pos, out int keyLength) + keyLength;
        at += ReadLength(page, at, out int valueLength);
        return at + valueLength - pos;
    }

    private static bool IsPage(byte[] array) => array.Length == PageSize;

    // Room for a record of size bytes: a page and the position in it.
    private byte[] AllocRecord(int size, out int pos)
    {
        if (size > StandaloneRecordBytes)
        {
            pos = 0;
            return new byte[size == PageSize ? size + 1 : size]; // never PageSize long: IsPage tells them apart
        }
        if (_page is null || _pageUsed + size > PageSize)
        {
            _page = new byte[PageSize];
            _pageUsed = 0;
        }
        pos = _pageUsed;
        _pageUsed += size;
        _pageBytes += size;
        return _page;
    }

    // Writes the record of key and value into new room; returns its page (pos: where it starts).
    private byte[] WriteRecord(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, out int pos)
    {
        byte[] page = AllocRecord(RecordSize(key.Length, value.Length), out pos);
        int at = pos + WriteLength(page, pos, key.Length);
        key.CopyTo(page.AsSpan(at));
        at += key.Length;
        at += WriteLength(page, at, value.Length);
        value.CopyTo(page.AsSpan(at));
        return page;
    }

    // A row stopped referring to item's record at pos (removed or replaced): counts its bytes as dead.
    private void DropRecord(object item, int pos)
    {
        if (item is byte[] page && IsPage(page)) _deadBytes += RecordSizeAt(page, pos);
    }

    // Copies every live record into fresh pages (row order), dropping the dead ones; between commands only.
    private void CompactPages()
    {
        _page = null;
        _pageUsed = 0;
        _pageBytes = _deadBytes = 0;
        for (int row = 0; row < _used; row++)
        {
            ref Row r = ref _rows[row];
            if (r.Item is not byte[] old || !IsPage(old)) continue;
            int size = RecordSizeAt(old, r.Pos);
            byte[] page = AllocRecord(size, out int pos);
            old.AsSpan(r.Pos, size).CopyTo(page.AsSpan(pos));
            r.Item = page;
            r.Pos = pos;
        }
        PageCompactions++;
    }

    // ---------------------------------------------------------------- internals

    private static bool IsPackable(object value) => value is byte[] b && b.Length <= PackedValueMaxBytes;

    private object MakeItem(ReadOnlySpan<byte> key, byte[]? keyArray, object value, out int pos)
    {
        if (!IsPackable(value))
        {
            pos = 0;
            return new KvKeyedValue(keyArray ?? key.ToArray(), value);
        }
        return WriteRecord(key, (byte[])value, out pos);
    }

    private static long ValueBytesOf(object item, int pos) => item switch
    {
        KvKeyedValue kv => ValueBytes(kv.Value),
        byte[] page => PackedValue(page, pos).Length,
        _ => 0,
    };

    private static int LengthSize(int length) => length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;

    private static int WriteLength(byte[] target, int start, int length)
    {
        uint v = (uint)length;
        int i = start;
        while (v >= 0x80)
        {
            target[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        target[i] = (byte)v;
        return i + 1 - start;
    }

    // A packed record's key or value length (a varint): one byte for a length under 128, the case of every 16-byte key
    // and value, read inline (§219: the loop took ~26 instructions a call, two or three calls a SET or GET).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int ReadLength(byte[] source, int start, out int length)
    {
        byte first = source[start];
        if (first < 0x80)
        {
            length = first;
            return 1;
        }
        return ReadLongLength(source, start, out length);
    }

    private static int ReadLongLength(byte[] source, int start, out int length)
    {
        uint v = 0;
        int shift = 0, i = start;
        byte b;
        do
        {
            b = source[i++];
            v |= (uint)(b & 0x7F) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);
        length = (int)v;
        return i - start;
    }

    // Every lookup hashes its key (XXH3, ~35 instructions for a 16-byte key, §219): the one-key memo this went through
    // (KeyHashMemo, when the hash took ~210) cost a compare and a copy of the key on every miss, which is every SET and
    // GET of a pipelined batch (~100 instructions a command), and saved about what it cost on a hit.
    private static int Hash(ReadOnlySpan<byte> key) => ByteArrayComparer.Instance.GetHashCode(key);

    private int FindRow(ReadOnlySpan<byte> key) => FindRow(key, Hash(key));

    private int FindRow(ReadOnlySpan<byte> key, int hash)
    {
        Row[] rows = _rows;
        int row = _buckets[hash & (_buckets.Length - 1)] - 1;
        while (row >= 0)
        {
            if (KeySpan(rows[row].Item!, rows[row].Pos).SequenceEqual(key)) return row;
            row = (int)(rows[row].Link & LinkMask) - 1;
        }
        return -1;
    }

    private void Grow()
    {
        if (_rows.Length >= MaxRows) throw new InvalidOperationException("Too many keys in one database.");
        // The next power of two: twice a full table's size, or, after TrimRows cut the array below the bucket count, the
        // bucket count again; the buckets (a power of two, at least the rows' length) are rebuilt only when they grow.
        int length = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)_rows.Length + 1);
        Array.Resize(ref _rows, length);
        if (length > _buckets.Length) Rehash(length);
    }

    private void Rehash(int bucketCount)
    {
        if (_buckets.Length != bucketCount) _buckets = new int[bucketCount];
        else Array.Clear(_buckets);
        int mask = bucketCount - 1;
        for (int row = 0; row < _used; row++)
        {
            ref Row r = ref _rows[row];
            if (r.Item is null) continue;
            int b = ByteArrayComparer.Instance.GetHashCode(KeySpan(r.Item, r.Pos)) & mask; // every key once: not through the memo
            r.Link = (r.Link & ~LinkMask) | (uint)_buckets[b];
            _buckets[b] = row + 1;
        }
    }

    private void SetExpireRow(int row, long expireAt)
    {
        ref Row r = ref _rows[row];
        if (expireAt < 0)
        {
            if ((r.Link & VolatileBit) == 0) return;
            _expires.Remove(row, out VolatileSlot slot);
            int last = _volatileRows.Count - 1;
            int moved = _volatileRows[last];
            if (moved != row)
            {
                _volatileRows[slot.Index] = moved;
                CollectionsMarshalRef(moved).Index = slot.Index;
            }
            _volatileRows.RemoveAt(last);
            Totals.Expiring--;
            Totals.CountsChanged(Index);
            r.Link &= ~VolatileBit;
            return;
        }
        if ((r.Link & VolatileBit) != 0)
        {
            CollectionsMarshalRef(row).At = expireAt;
            return;
        }
        _expires[row] = new VolatileSlot { At = expireAt, Index = _volatileRows.Count };
        _volatileRows.Add(row);
        Totals.Expiring++;
        Totals.CountsChanged(Index);
        r.Link |= VolatileBit;
    }

    private ref VolatileSlot CollectionsMarshalRef(int row) =>
        ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_expires, row);
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
