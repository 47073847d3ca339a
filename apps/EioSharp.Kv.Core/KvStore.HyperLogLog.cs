namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The HyperLogLog commands.</summary>
    internal static readonly KvCommandInfo[] HyperLogLogCommands =
    [
    ];
}
