namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The Hash commands.</summary>
    internal static readonly KvCommandInfo[] HashCommands =
    [
    ];
}
