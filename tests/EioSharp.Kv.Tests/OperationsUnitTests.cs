using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>Issue 13 (session 5): CONFIG RESETSTAT of the store's statistics, ACL selectors and configured users, the
/// command table's script flags.</summary>
public class OperationsUnitTests
{
    [Fact]
    public void Resetstat_zeroes_the_store_counters_at_the_next_update()
    {
        var h = new StoreHarness(new KvStore());
        var stats = new KvServerStats();
        h.Run("SET", "a", "1");
        h.Run("GET", "a");
        h.Run("GET", "missing");
        stats.UpdateFrom(h.Store);
        Assert.Equal(1, stats.KeyspaceHits);
        Assert.Equal(1, stats.KeyspaceMisses);
        stats.ResetStats();
        Assert.Equal(0, stats.KeyspaceHits); // at once in what INFO shows
        stats.UpdateFrom(h.Store);
        Assert.Equal(0, h.Store.KeyspaceHits); // and in the store, on its owner
        Assert.Equal(0, h.Store.KeyspaceMisses);
        Assert.Equal(0, stats.KeyspaceMisses);
        h.Run("GET", "missing");
        stats.UpdateFrom(h.Store);
        Assert.Equal(1, stats.KeyspaceMisses);
    }

    [Fact]
    public void Selectors_split_over_arguments_are_merged_and_described_as_redis()
    {
        var acl = new KvAcl();
        Assert.Null(acl.SetUser("u", ["on", "nopass", "(~k* +get)", "(", "+set", "~s*", ")"]));
        Assert.Equal("user u on nopass resetchannels -@all (~k* resetchannels -@all +get) (~s* resetchannels -@all +set)", KvAcl.Describe(acl.Find("u")!));
        Assert.Equal("ERR Unmatched parenthesis in acl selector starting at '(~a'.", acl.SetUser("v", ["(~a", "+get"]));
        Assert.Equal("ERR Error in ACL SETUSER modifier '(foo)': Syntax error", acl.SetUser("v", ["(foo)"]));
        Assert.Null(acl.SetUser("u", ["clearselectors"]));
        Assert.Equal("user u on nopass resetchannels -@all", KvAcl.Describe(acl.Find("u")!));
    }

    [Fact]
    public void Configured_users_create_new_users_and_reset_the_default_one()
    {
        var acl = new KvAcl();
        acl.LoadConfiguredUsers([["alice", "on", ">pw", "~a*", "+get", "(~b*", "+set)"], ["default", "on", "nopass", "~*", "+@all"]]);
        Assert.Equal("user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~a* resetchannels -@all +get (~b* resetchannels -@all +set)",
            KvAcl.Describe(acl.Find("alice")!));
        Assert.Equal("user default on nopass sanitize-payload ~* resetchannels +@all", KvAcl.Describe(acl.Find("default")!));
        var e = Assert.Throws<KvConfigException>(() => acl.LoadConfiguredUsers([["bob", "on", "+nosuchcommand"]]));
        Assert.Equal("Error loading ACL rule '+nosuchcommand' for the user named 'bob': Unknown command or category name in ACL", e.Message);
    }

    [Fact]
    public void Script_commands_are_not_write_commands()
    {
        foreach (string name in new[] { "eval", "evalsha", "fcall" })
        {
            KvCommandInfo info = KvCommandTable.Find(System.Text.Encoding.ASCII.GetBytes(name))!;
            Assert.False(info.IsWrite, name);
            Assert.True((info.Flags & KvCommandFlags.Script) != 0, name);
        }
    }
}
