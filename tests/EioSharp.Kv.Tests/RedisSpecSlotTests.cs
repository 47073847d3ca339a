using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>KvRedisCommands.Lookup(command, info) keeps Redis's entry in the table entry's slot after the first lookup
/// (session 26): the answers stay those of the lookup by name, and the slot takes no part in the record's equality.</summary>
public sealed class RedisSpecSlotTests
{
    [Fact]
    public void The_cached_lookup_answers_as_the_lookup_by_name_for_every_table_entry()
    {
        foreach (KvCommandInfo info in KvCommandTable.All)
        {
            foreach (string[] args in new[] { new[] { info.Name, "x" }, new[] { info.Name, "help" }, new[] { info.Name } })
            {
                KvCommand command = KvCommand.Create(args);
                RedisCommandSpec? byName = KvRedisCommands.Lookup(command);
                Assert.Same(byName, KvRedisCommands.Lookup(command, info)); // fills the slot (or finds it filled)
                Assert.Same(byName, KvRedisCommands.Lookup(command, info)); // from the slot
            }
        }
    }

    [Fact]
    public void An_entry_not_in_the_table_is_looked_up_by_name()
    {
        var own = new KvCommandInfo(KvCommandId.Publish, "publish", 3, KvCommandFlags.Connection, 0, 0, 0);
        KvCommand command = KvCommand.Create("PUBLISH", "ch", "msg");
        Assert.Same(KvRedisCommands.Lookup(command), KvRedisCommands.Lookup(command, own));
        Assert.Same(KvRedisCommands.Lookup(command), KvRedisCommands.Lookup(command, own));
        Assert.NotNull(KvRedisCommands.Lookup(command, own));
    }

    [Fact]
    public void The_slot_takes_no_part_in_equality()
    {
        var a = new KvCommandInfo(KvCommandId.Publish, "publish", 3, KvCommandFlags.Connection, 0, 0, 0);
        var b = new KvCommandInfo(KvCommandId.Publish, "publish", 3, KvCommandFlags.Connection, 0, 0, 0);
        KvRedisCommands.Lookup(KvCommand.Create("PUBLISH", "ch", "msg"), a); // a's slot filled, b's empty
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }
}
