using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

internal static class Resp
{
    public static byte[] Encode(params string[] args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    public static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    public static string Text(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

    public static string[] Args(KvCommand c)
    {
        var r = new string[c.Count];
        for (int i = 0; i < c.Count; i++) r[i] = c.GetString(i);
        return r;
    }
}

/// <summary>Runs commands against a store with a settable clock and returns raw RESP replies.</summary>
internal sealed class StoreHarness
{
    public KvStore Store { get; }
    public long Now { get; set; } = 1_700_000_000_000;
    public AofListSink Aof { get; } = new();
    public int Protocol { get; set; } = 2;

    public StoreHarness(KvStore? store = null) => Store = store ?? new KvStore(random: new Random(1));

    public string Run(params string[] args)
    {
        var buffer = new ArrayBufferWriter<byte>();
        Store.Execute(KvCommand.Create(args), Now, new RespWriter(buffer, Protocol), Aof);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public List<string> Logged => Aof.Commands.Select(c => c.ToString()).ToList();
}

/// <summary>A client of a <see cref="StoreHarness"/> with a session of its own (blocking commands, per-client state): its
/// replies collect in <see cref="Output"/> until taken, so a blocked client's later reply shows up when another client's
/// write serves it.</summary>
internal sealed class StoreClient
{
    private RespWriter? _writer;

    public StoreClient(long id) => Session = new KvSession { ClientId = id };

    public KvSession Session { get; }

    public ArrayBufferWriter<byte> Output { get; } = new();

    public RespWriter Writer => _writer ??= new RespWriter(Output);

    /// <summary>The replies written since the last take, as text.</summary>
    public string Take()
    {
        string text = Encoding.UTF8.GetString(Output.WrittenSpan);
        Output.ResetWrittenCount();
        return text;
    }

    /// <summary>Runs one command as <paramref name="c"/> and returns what it answered at once ("" for a command that blocked).</summary>
    public static string Run(StoreHarness h, StoreClient c, params string[] args)
    {
        h.Store.Execute(c.Session, KvCommand.Create(args), h.Now, c.Writer, h.Aof);
        return c.Take();
    }

    /// <summary>A blocking pop's reply: the key and the element, as a two-element array.</summary>
    public static string Pop(string key, string value) => $"*2\r\n${key.Length}\r\n{key}\r\n${value.Length}\r\n{value}\r\n";
}
