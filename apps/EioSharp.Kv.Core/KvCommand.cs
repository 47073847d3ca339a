using System.Runtime.CompilerServices;
using System.Text;

namespace EioSharp.Kv;

/// <summary>One parsed command: its arguments (the command name is argument 0), binary-safe.</summary>
/// <remarks>
/// All arguments live in one byte array with an offsets table, so a parsed command costs three
/// allocations whatever its argument count. Arguments are read as spans; <see cref="ToArray"/>
/// copies one when it must outlive the command (the store copies keys and values it keeps).
/// A large argument received over the network (see <see cref="RespRequestReader"/>) has an array of its own
/// instead, read into directly from the socket; <see cref="ToSharedArray"/> hands it to the store without a copy.
/// <para><b>Thread safety</b>: immutable after construction; <see cref="Info"/> is resolved lazily
/// and idempotently, so a command may be handed from a connection fiber to the store owner.</para>
/// </remarks>
public sealed class KvCommand
{
    private byte[] _data;
    private int[] _offsets; // Count + 1 entries; argument i is _data[_offsets[i].._offsets[i+1]] (owned commands)
    private readonly byte[]?[]? _own; // when _own[i] is set, argument i is that whole array (the range in _data is empty)

    // A view (parsed in place): argument i is _data[_offsets[_first + 2i] ..][.. _offsets[_first + 2i + 1]] (start, length
    // pairs in the connection's arena over its receive buffer); _count arguments. _count == 0: an owned command.
    private int _first;
    private int _count;
    // A view parsed whole from a multibulk request: its bytes as received (_data[_rawStart..][.._rawLength]), which are
    // its AOF encoding (the parser takes only Redis's canonical form: see TryGetEncoded). 0: none (owned, or not whole).
    private int _rawStart;
    private int _rawLength;
    // _info value for "looked up, not a command": an entry of its own type, so that Info reads one typed field and compares
    // a reference (no type test), and is small enough to inline (§221: get_Info was ~20 instructions a call, five calls a command).
    private static readonly KvCommandInfo s_unknown = new(KvCommandId.Data, "", 0, KvCommandFlags.None, 0, 0, 0);
    private KvCommandInfo? _info; // null: not looked up yet; one reference write publishes the result safely

    internal KvCommand(byte[] data, int[] offsets, byte[]?[]? own = null)
    {
        _data = data;
        _offsets = offsets;
        _own = own;
    }

    /// <summary>A view over a receive buffer (see <see cref="KvCommandArena"/>): valid only until the connection's batch
    /// is done; whoever keeps the command longer keeps <see cref="ToOwned"/> instead.</summary>
    internal KvCommand(byte[] buffer, int[] positions, int first, int count, int rawStart = 0, int rawLength = 0)
    {
        _data = buffer;
        _offsets = positions;
        _first = first;
        _count = count;
        _rawStart = rawStart;
        _rawLength = rawLength;
    }

    /// <summary>True when the command is a view over a connection's receive buffer (valid during its batch only).</summary>
    public bool IsView => _count > 0;

    /// <summary>Number of arguments, including the command name; at least 1.</summary>
    public int Count => _count > 0 ? _count : _offsets.Length - 1;

    /// <summary>Argument <paramref name="index"/> (0 is the command name).</summary>
    /// <exception cref="IndexOutOfRangeException"><paramref name="index"/> is not below <see cref="Count"/>.</exception>
    public ReadOnlySpan<byte> this[int index]
    {
        // A view's argument inline (the request path reads several a command: §221); an owned command's in a call.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (_count > 0)
            {
                if ((uint)index >= (uint)_count) ThrowIndexOutOfRange();
                int k = _first + 2 * index;
                int[] offsets = _offsets;
                return _data.AsSpan(offsets[k], offsets[k + 1]);
            }
            return OwnedArgument(index);
        }
    }

    private ReadOnlySpan<byte> OwnedArgument(int index) =>
        _own?[index] is { } own ? own : _data.AsSpan(_offsets[index], _offsets[index + 1] - _offsets[index]);

    private static void ThrowIndexOutOfRange() => throw new IndexOutOfRangeException();

    /// <summary>Argument <paramref name="index"/> as memory over the command's buffer (no copy; for a view, valid during
    /// its batch only).</summary>
    public ReadOnlyMemory<byte> GetMemory(int index)
    {
        if (_count > 0)
        {
            if ((uint)index >= (uint)_count) throw new IndexOutOfRangeException();
            int k = _first + 2 * index;
            return _data.AsMemory(_offsets[k], _offsets[k + 1]);
        }
        return _own?[index] is { } own ? own : _data.AsMemory(_offsets[index], _offsets[index + 1] - _offsets[index]);
    }

    /// <summary>This command when it owns its data, else a copy that does (for whoever keeps a command past its batch:
    /// a MULTI queue, a blocked command, a request nobody waits for).</summary>
    public KvCommand ToOwned()
    {
        if (_count == 0) return this;
        // One data array and one offsets table (three allocations whatever the argument count; no array per argument).
        var offsets = new int[_count + 1];
        int total = 0;
        for (int i = 0; i < _count; i++)
        {
            offsets[i] = total;
            total = checked(total + _offsets[_first + 2 * i + 1]);
        }
        offsets[_count] = total;
        var data = new byte[total];
        for (int i = 0; i < _count; i++) this[i].CopyTo(data.AsSpan(offsets[i]));
        return new KvCommand(data, offsets) { _info = _info };
    }

    /// <summary>Points a pooled view at new arguments (the arena's recycling; the name is looked up again).</summary>
    internal void Reset(byte[] buffer, int[] positions, int first, int count, int rawStart = 0, int rawLength = 0)
    {
        _data = buffer;
        _offsets = positions;
        _first = first;
        _count = count;
        _rawStart = rawStart;
        _rawLength = rawLength;
        _info = null;
        _hasKeyHash = false;
    }

    /// <summary>The command's bytes as received, when it is a view parsed whole from a multibulk request: then they are
    /// exactly its AOF encoding (<c>*N\r\n</c>, then <c>$len\r\nbytes\r\n</c> per argument), because the parser
    /// accepts only that canonical form (Redis's string2ll rules: no sign, no leading zero, <c>\r\n</c> after each
    /// line), so <see cref="AofWriter.WriteCommand"/> copies them instead of encoding the arguments again. False for an
    /// owned command and an inline one. For a view: valid during its batch only.</summary>
    internal bool TryGetEncoded(out ReadOnlySpan<byte> encoded)
    {
        if (_rawLength > 0 && _count > 0)
        {
            encoded = _data.AsSpan(_rawStart, _rawLength);
            return true;
        }
        encoded = default;
        return false;
    }

    /// <summary>Takes <paramref name="other"/>'s table entry when it was looked up already (a copy of it with the same
    /// name: no second lookup).</summary>
    internal void ShareInfo(KvCommand other) => _info ??= Volatile.Read(ref other._info);

    /// <summary>Sets the table entry of a view whose name the caller has looked up already (it must be the entry
    /// <see cref="KvCommandTable.Find(ReadOnlySpan{byte})"/> gives for <see cref="Name"/>); a later <c>Reset</c> clears it.</summary>
    internal void SetInfo(KvCommandInfo info) => Volatile.Write(ref _info, info);

    /// <summary>Copies argument <paramref name="index"/> into a new array.</summary>
    public byte[] ToArray(int index) => this[index].ToArray();

    /// <summary>Argument <paramref name="index"/> as an array the caller may keep but must never modify: the argument's own
    /// array when it has one (a large argument; no copy, so a 500 MB SET does not hold the value twice), else a copy.</summary>
    public byte[] ToSharedArray(int index) => _own?[index] ?? ToArray(index);

    /// <summary>Whether argument <paramref name="index"/> is a large argument received into an array of its own
    /// (<see cref="ToSharedArray"/> hands out that array without a copy).</summary>
    internal bool HasOwnArray(int index) => _own?[index] is not null;

    /// <summary>Argument <paramref name="index"/> decoded as UTF-8 (invalid sequences replaced); for messages.</summary>
    public string GetString(int index) => Encoding.UTF8.GetString(this[index]);

    /// <summary>The command name (argument 0) as written by the client.</summary>
    public ReadOnlySpan<byte> Name => this[0];

    /// <summary>The command's table entry, or null when the name is unknown.</summary>
    /// <remarks>Looked up at the first read and kept (idempotent: a read from another thread looks up the same entry).</remarks>
    public KvCommandInfo? Info
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            KvCommandInfo info = Volatile.Read(ref _info) ?? LookUpInfo();
            return ReferenceEquals(info, s_unknown) ? null : info;
        }
    }

    private KvCommandInfo LookUpInfo()
    {
        KvCommandInfo info = KvCommandTable.Find(Name) ?? s_unknown;
        Volatile.Write(ref _info, info);
        return info;
    }

    // The hash of argument 1 (ByteArrayComparer's), when the store's prefetch computed it (§221): the command's own
    // lookup of that key takes it instead of hashing the key again. Cleared by Reset (a view pointed at new arguments).
    private int _keyHash;
    private bool _hasKeyHash;

    /// <summary>Keeps <paramref name="hash"/>, <see cref="ByteArrayComparer"/>'s hash of argument 1, for
    /// <see cref="TryGetKeyHash"/> (the store's prefetch, which hashed the key, hands it to the command's lookup).</summary>
    internal void SetKeyHash(int hash)
    {
        _keyHash = hash;
        _hasKeyHash = true;
    }

    /// <summary>The hash kept by <see cref="SetKeyHash"/>, when <paramref name="key"/> is argument 1 itself (the same
    /// memory and length, so the same bytes): false for any other span, or when none was kept.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryGetKeyHash(ReadOnlySpan<byte> key, out int hash)
    {
        hash = _keyHash;
        if (!_hasKeyHash) return false;
        ReadOnlySpan<byte> first = this[1];
        return first.Length == key.Length &&
               Unsafe.AreSame(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(first),
                   ref System.Runtime.InteropServices.MemoryMarshal.GetReference(key));
    }

    /// <summary>Total bytes of argument data (without RESP framing).</summary>
    public int DataLength
    {
        get
        {
            if (_count > 0)
            {
                long sum = 0;
                for (int i = 0; i < _count; i++) sum += _offsets[_first + 2 * i + 1];
                return (int)Math.Min(sum, int.MaxValue);
            }
            long total = _offsets[^1];
            if (_own is not null) foreach (byte[]? a in _own) total += a?.Length ?? 0;
            return (int)Math.Min(total, int.MaxValue);
        }
    }

    /// <summary>Builds a command from byte arguments (copied).</summary>
    /// <exception cref="ArgumentException">No arguments.</exception>
    public static KvCommand Create(params ReadOnlySpan<byte[]> arguments)
    {
        if (arguments.Length == 0) throw new ArgumentException("A command needs at least its name.", nameof(arguments));
        var offsets = new int[arguments.Length + 1];
        int total = 0;
        for (int i = 0; i < arguments.Length; i++)
        {
            offsets[i] = total;
            total = checked(total + arguments[i].Length);
        }
        offsets[^1] = total;
        var data = new byte[total];
        for (int i = 0; i < arguments.Length; i++) arguments[i].CopyTo(data, offsets[i]);
        return new KvCommand(data, offsets);
    }

    /// <summary>Builds a command of the first <paramref name="count"/> (1 to 5) of the span arguments (copied once into
    /// the command's data array; no array per argument).</summary>
    internal static KvCommand Create(int count, scoped ReadOnlySpan<byte> a0, scoped ReadOnlySpan<byte> a1, scoped ReadOnlySpan<byte> a2,
        scoped ReadOnlySpan<byte> a3 = default, scoped ReadOnlySpan<byte> a4 = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 5);
        var offsets = new int[count + 1];
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            offsets[i] = total;
            total = checked(total + (i switch { 0 => a0.Length, 1 => a1.Length, 2 => a2.Length, 3 => a3.Length, _ => a4.Length }));
        }
        offsets[count] = total;
        var data = new byte[total];
        a0.CopyTo(data);
        if (count > 1) a1.CopyTo(data.AsSpan(offsets[1]));
        if (count > 2) a2.CopyTo(data.AsSpan(offsets[2]));
        if (count > 3) a3.CopyTo(data.AsSpan(offsets[3]));
        if (count > 4) a4.CopyTo(data.AsSpan(offsets[4]));
        return new KvCommand(data, offsets);
    }

    /// <summary>Builds a command from string arguments encoded as UTF-8; convenient in tests.</summary>
    /// <exception cref="ArgumentException">No arguments.</exception>
    public static KvCommand Create(params ReadOnlySpan<string> arguments)
    {
        var bytes = new byte[arguments.Length][];
        for (int i = 0; i < arguments.Length; i++) bytes[i] = Encoding.UTF8.GetBytes(arguments[i]);
        return Create(bytes);
    }

    /// <summary>Returns the arguments joined by spaces, for logs and test failures.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < Count; i++)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(GetString(i));
        }
        return sb.ToString();
    }
}

/// <summary>The commands of one connection's batch parsed in place: views over its receive buffer (start, length pairs
/// in one reused array) and the view objects themselves, reused batch after batch, so that a command whose bytes are
/// all received costs no allocation and no copy of its arguments.</summary>
/// <remarks>The views are valid until <see cref="Reset"/> (the connection's next read into the buffer): the connection
/// resets the arena only once every command of the batch has run. Who keeps a command longer calls
/// <see cref="KvCommand.ToOwned"/>. Thread safety: one connection fiber (the store owner reads the views while the
/// connection waits for its batch).</remarks>
public sealed class KvCommandArena
{
    private readonly List<KvCommand> _views = new(16);
    private int _usedViews;
    private int[] _positions = new int[64];
    private int _usedPositions;
    // The last name looked up and its table entry (§221): a pipeline repeats its command, and the lookup (a folded hash
    // of the name, a probe, a case-insensitive compare: ~150 instructions a command) becomes a compare of a few bytes.
    private readonly byte[] _lastName = new byte[MemoNameLength];
    private int _lastNameLength = -1; // -1: none
    private KvCommandInfo? _lastInfo;
    private const int MemoNameLength = 32; // longer than any command name (KvCommandTable's limit)

    /// <summary>The receive buffer the views point into.</summary>
    public byte[] Buffer { get; private set; } = [];

    /// <summary>Commands handed out since the last reset.</summary>
    public int Count => _usedViews;

    /// <summary>Forgets every view handed out (their batch is done) and points new ones at <paramref name="buffer"/>.</summary>
    public void Reset(byte[] buffer)
    {
        Buffer = buffer;
        _usedViews = 0;
        _usedPositions = 0;
        if (_positions.Length > 64 * 1024) _positions = new int[64]; // after a batch of over 32,768 arguments
        if (_views.Count > 1024) _views.RemoveRange(1024, _views.Count - 1024);
    }

    /// <summary>Room for <paramref name="count"/> arguments; returns the index of the first pair.</summary>
    internal int Reserve(int count)
    {
        int need = _usedPositions + 2 * count;
        if (need > _positions.Length) Array.Resize(ref _positions, Math.Max(need, _positions.Length * 2));
        int first = _usedPositions;
        _usedPositions = need;
        return first;
    }

    /// <summary>Gives back the last <see cref="Reserve"/> (the command was not whole).</summary>
    internal void Unreserve(int count) => _usedPositions -= 2 * count;

    internal int[] Positions => _positions;

    /// <summary>A view of the <paramref name="count"/> arguments whose pairs start at <paramref name="first"/>; with
    /// <paramref name="rawLength"/> &gt; 0, the command's whole request (canonical multibulk form) is
    /// <see cref="Buffer"/>[<paramref name="rawStart"/>..][..<paramref name="rawLength"/>] (<see cref="KvCommand.TryGetEncoded"/>).</summary>
    /// <remarks>The view's table entry (<see cref="KvCommand.Info"/>) is set here: the previous view's when the name's
    /// bytes are the same, else looked up (every command's entry is read by the connection at once anyway).</remarks>
    internal KvCommand View(int first, int count, int rawStart = 0, int rawLength = 0)
    {
        KvCommand v;
        if (_usedViews < _views.Count)
        {
            v = _views[_usedViews++];
            v.Reset(Buffer, _positions, first, count, rawStart, rawLength);
        }
        else
        {
            v = new KvCommand(Buffer, _positions, first, count, rawStart, rawLength);
            _views.Add(v);
            _usedViews++;
        }
        ReadOnlySpan<byte> name = Buffer.AsSpan(_positions[first], _positions[first + 1]);
        if (name.Length == _lastNameLength && name.SequenceEqual(_lastName.AsSpan(0, _lastNameLength)))
        {
            v.SetInfo(_lastInfo!);
        }
        else if (name.Length <= MemoNameLength && v.Info is { } info)
        {
            name.CopyTo(_lastName);
            _lastNameLength = name.Length;
            _lastInfo = info;
        }
        return v;
    }
}
