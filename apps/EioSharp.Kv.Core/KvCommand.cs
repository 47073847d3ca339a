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
    private readonly byte[] _data;
    private readonly int[] _offsets; // Count + 1 entries; argument i is _data[_offsets[i].._offsets[i+1]]
    private readonly byte[]?[]? _own; // when _own[i] is set, argument i is that whole array (the range in _data is empty)
    private static readonly object s_unknown = new(); // _info value for "looked up, not a command"
    private object? _info; // null: not looked up yet; one reference write publishes the result safely

    internal KvCommand(byte[] data, int[] offsets, byte[]?[]? own = null)
    {
        _data = data;
        _offsets = offsets;
        _own = own;
    }

    /// <summary>Number of arguments, including the command name; at least 1.</summary>
    public int Count => _offsets.Length - 1;

    /// <summary>Argument <paramref name="index"/> (0 is the command name).</summary>
    public ReadOnlySpan<byte> this[int index] =>
        _own?[index] is { } own ? own : _data.AsSpan(_offsets[index], _offsets[index + 1] - _offsets[index]);

    /// <summary>Argument <paramref name="index"/> as memory over the command's buffer (no copy).</summary>
    public ReadOnlyMemory<byte> GetMemory(int index) =>
        _own?[index] is { } own ? own : _data.AsMemory(_offsets[index], _offsets[index + 1] - _offsets[index]);

    /// <summary>Copies argument <paramref name="index"/> into a new array.</summary>
    public byte[] ToArray(int index) => this[index].ToArray();

    /// <summary>Argument <paramref name="index"/> as an array the caller may keep but must never modify: the argument's own
    /// array when it has one (a large argument; no copy, so a 500 MB SET does not hold the value twice), else a copy.</summary>
    public byte[] ToSharedArray(int index) => _own?[index] ?? ToArray(index);

    /// <summary>Argument <paramref name="index"/> decoded as UTF-8 (invalid sequences replaced); for messages.</summary>
    public string GetString(int index) => Encoding.UTF8.GetString(this[index]);

    /// <summary>The command name (argument 0) as written by the client.</summary>
    public ReadOnlySpan<byte> Name => this[0];

    /// <summary>The command's table entry, or null when the name is unknown.</summary>
    public KvCommandInfo? Info
    {
        get
        {
            object? info = Volatile.Read(ref _info);
            if (info is null)
            {
                info = (object?)KvCommandTable.Find(Name) ?? s_unknown;
                Volatile.Write(ref _info, info);
            }
            return info as KvCommandInfo;
        }
    }

    /// <summary>Total bytes of argument data (without RESP framing).</summary>
    public int DataLength
    {
        get
        {
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
