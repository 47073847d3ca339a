namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The List commands.</summary>
    internal static readonly KvCommandInfo[] ListCommands =
    [
    ];
}
