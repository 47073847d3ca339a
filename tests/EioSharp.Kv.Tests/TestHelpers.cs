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
