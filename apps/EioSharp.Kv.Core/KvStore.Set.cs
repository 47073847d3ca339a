namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The Set commands.</summary>
    internal static readonly KvCommandInfo[] SetCommands =
    [
    ];
}
