namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The Stream commands.</summary>
    internal static readonly KvCommandInfo[] StreamCommands =
    [
    ];
}
