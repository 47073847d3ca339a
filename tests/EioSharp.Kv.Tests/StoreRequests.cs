using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>Requests for tests that queue work to a store owner directly (no connection): HeldRoundTests and
/// DeferredAofWriteTests.</summary>
internal static class StoreRequests
{
    /// <summary>A command from its arguments as UTF-8 text.</summary>
    public static KvCommand Cmd(params string[] args) => KvCommand.Create(args.Select(Encoding.UTF8.GetBytes).ToArray());

    /// <summary>A request carrying <paramref name="commands"/>.</summary>
    public static StoreRequest Request(params KvCommand[] commands)
    {
        var r = new StoreRequest();
        r.Commands.AddRange(commands);
        return r;
    }

    /// <summary>The request's reply bytes as text.</summary>
    public static string ReplyText(StoreRequest r) => Encoding.UTF8.GetString(r.Reply.WrittenSpan);
}
