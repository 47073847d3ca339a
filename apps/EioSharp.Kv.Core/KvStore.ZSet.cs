namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The ZSet commands.</summary>
    internal static readonly KvCommandInfo[] ZSetCommands =
    [
    ];
}
