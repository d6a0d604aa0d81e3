#include "fence/metadata.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace hafront::fence {
namespace {

using Strings = std::vector<std::string>;

// Fixtures under fixtures/metadata/: fence_*.xml were captured from fence-agents 4.12.1
// (`fence_X -o metadata`); not_xml.txt is what fence_ack_manual prints for it; the rest
// are written by hand.
std::string fixture(const std::string& name) {
  std::ifstream in(std::string(HAFRONT_SOURCE_DIR) + "/tests/unit/fence/fixtures/metadata/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

AgentMetadata parse_ok(std::string_view xml) {
  auto r = parse_metadata(xml);
  if (auto* err = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << "parse failed: " << *err;
    return {};
  }
  return std::get<AgentMetadata>(r);
}

AgentMetadata agent(const std::string& name) { return parse_ok(fixture(name + ".xml")); }

std::string parse_error(std::string_view xml) {
  auto r = parse_metadata(xml);
  if (!std::holds_alternative<std::string>(r)) {
    ADD_FAILURE() << "parsed, expected an error";
    return {};
  }
  return std::get<std::string>(r);
}

// A minimal agent description in the shape fencing.py prints.
std::string synthetic(const std::string& parameters, const std::string& actions = "<action name=\"off\"/>") {
  return "<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_fake\" shortdesc=\"x\">\n<parameters>\n" +
         parameters + "</parameters>\n<actions>" + actions + "</actions>\n</resource-agent>\n";
}

// ---- parsing real agents ----------------------------------------------------------------

TEST(FenceMetadataParse, Ipmilan) {
  AgentMetadata md = agent("fence_ipmilan");
  EXPECT_EQ(md.agent, "fence_ipmilan");
  EXPECT_EQ(md.parameters.size(), 41u);

  const AgentParameter* ip = md.find("ip");
  ASSERT_NE(ip, nullptr);
  EXPECT_FALSE(ip->required);  // port_as_ip agents drop it; validate_device() restores the rule
  EXPECT_FALSE(ip->deprecated);
  EXPECT_EQ(ip->obsoletes, "ipaddr");
  const AgentParameter* ipaddr = md.find("ipaddr");
  ASSERT_NE(ipaddr, nullptr);
  EXPECT_EQ(ipaddr->name, "ipaddr");
  EXPECT_TRUE(ipaddr->deprecated);

  const AgentParameter* lanplus = md.find("lanplus");
  ASSERT_NE(lanplus, nullptr);
  EXPECT_EQ(lanplus->type, "boolean");
  EXPECT_EQ(lanplus->default_value, "0");

  const AgentParameter* auth = md.find("auth");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->type, "select");
  EXPECT_EQ(auth->options, (Strings{"md5", "password", "none"}));
  EXPECT_EQ(auth->default_value, "");

  const AgentParameter* privlvl = md.find("privlvl");
  ASSERT_NE(privlvl, nullptr);
  EXPECT_EQ(privlvl->default_value, "administrator");
  EXPECT_EQ(privlvl->options.size(), 4u);

  ASSERT_NE(md.find("ipport"), nullptr);
  EXPECT_EQ(md.find("ipport")->type, "integer");
  EXPECT_EQ(md.find("ipport")->default_value, "623");
  EXPECT_EQ(md.find("delay")->type, "second");

  const AgentParameter* username = md.find("username");
  ASSERT_NE(username, nullptr);
  EXPECT_EQ(username->obsoletes, "login");
  EXPECT_FALSE(username->required);  // IPMI allows an anonymous user

  const AgentParameter* action = md.find("action");
  ASSERT_NE(action, nullptr);
  EXPECT_TRUE(action->required);
  EXPECT_EQ(action->default_value, "reboot");

  EXPECT_EQ(md.actions, (std::set<std::string>{"on", "off", "reboot", "status", "monitor", "metadata",
                                                "manpage", "validate-all", "diag"}));
  EXPECT_TRUE(md.supports("off"));
  EXPECT_TRUE(md.supports("diag"));
  EXPECT_FALSE(md.supports("list"));
}

TEST(FenceMetadataParse, ApcSnmpRequiresAddressAndPlug) {
  AgentMetadata md = agent("fence_apc_snmp");
  EXPECT_EQ(md.agent, "fence_apc_snmp");
  // Both names of a renamed parameter carry the same required flag.
  EXPECT_TRUE(md.find("ip")->required);
  EXPECT_TRUE(md.find("ipaddr")->required);
  const AgentParameter* plug = md.find("plug");
  ASSERT_NE(plug, nullptr);
  EXPECT_TRUE(plug->required);
  EXPECT_EQ(plug->obsoletes, "port");
  EXPECT_TRUE(md.find("port")->required);
  EXPECT_TRUE(md.find("port")->deprecated);
  EXPECT_FALSE(md.find("username")->required);  // SNMP v1/v2c has a community, no login

  const AgentParameter* version = md.find("snmp_version");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version->options, (Strings{"1", "2c", "3"}));
  EXPECT_EQ(version->default_value, "1");
  EXPECT_EQ(md.find("community")->default_value, "private");
  EXPECT_EQ(md.find("port_as_ip"), nullptr);
  EXPECT_TRUE(md.supports("list"));
  EXPECT_TRUE(md.supports("list-status"));
  EXPECT_FALSE(md.supports("diag"));
}

TEST(FenceMetadataParse, RedfishHyphenatedOldNames) {
  AgentMetadata md = agent("fence_redfish");
  EXPECT_TRUE(md.find("username")->required);
  EXPECT_TRUE(md.find("login")->required);
  EXPECT_FALSE(md.find("ip")->required);
  EXPECT_FALSE(md.find("plug")->required);
  // fence_redfish lists the old spelling "redfish-uri" as a parameter of its own.
  const AgentParameter* old = md.find("redfish-uri");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->name, "redfish-uri");
  EXPECT_TRUE(old->deprecated);
  const AgentParameter* uri = md.find("redfish_uri");
  ASSERT_NE(uri, nullptr);
  EXPECT_EQ(uri->obsoletes, "redfish-uri");
  EXPECT_EQ(uri->default_value, "/redfish/v1");
  EXPECT_EQ(md.find("ssl")->type, "boolean");
  EXPECT_EQ(md.find("ssl")->default_value, "1");
}

TEST(FenceMetadataParse, VirshEntitiesAreDecoded) {
  AgentMetadata md = agent("fence_virsh");
  EXPECT_TRUE(md.find("username")->required);
  EXPECT_TRUE(md.find("plug")->required);
  EXPECT_EQ(md.find("command_prompt")->default_value, "['\\\\[EXPECT\\\\]#']");
  EXPECT_EQ(md.find("ssh_options")->default_value,
            "-t '/bin/bash -c \"PS1=\\\\[EXPECT\\\\]# /bin/bash --noprofile --norc\"'");
}

TEST(FenceMetadataParse, FindTreatsDashAndUnderscoreAlike) {
  AgentMetadata md = agent("fence_ipmilan");
  EXPECT_EQ(md.find("port-as-ip"), md.find("port_as_ip"));
  EXPECT_EQ(md.find("debug-file")->name, "debug_file");
  EXPECT_EQ(md.find("nonesuch"), nullptr);
  EXPECT_EQ(md.find(""), nullptr);
}

TEST(FenceMetadataParse, FindByObsoletesAlias) {
  // Metadata that lists only the new name still answers for the old one, in either
  // direction of the login/username rename.
  AgentMetadata md = parse_ok(synthetic(
      "<parameter name=\"login\" required=\"1\" obsoletes=\"username\"><content type=\"string\"/></parameter>\n"
      "<parameter name=\"ip\" required=\"1\" obsoletes=\"ipaddr\"><content type=\"string\"/></parameter>\n"));
  ASSERT_NE(md.find("username"), nullptr);
  EXPECT_EQ(md.find("username")->name, "login");
  EXPECT_EQ(md.find("ipaddr")->name, "ip");
}

TEST(FenceMetadataParse, ParameterWithoutContentIsAString) {
  AgentMetadata md = parse_ok(synthetic("<parameter name=\"x\" required=\"0\"/>\n"));
  ASSERT_EQ(md.parameters.size(), 1u);
  EXPECT_EQ(md.parameters[0].type, "string");
  EXPECT_TRUE(md.parameters[0].options.empty());
}

TEST(FenceMetadataParse, QuotedAngleBracketsInAttributes) {
  AgentMetadata md = parse_ok(synthetic(
      "<parameter name=\"x\"><content type=\"string\" default=\"a/>b>c\"/></parameter>\n"
      "<!-- <unclosed> inside a comment -->\n"));
  EXPECT_EQ(md.find("x")->default_value, "a/>b>c");
}

// ---- malformed input --------------------------------------------------------------------

TEST(FenceMetadataMalformed, Truncated) {
  std::string e = parse_error(fixture("truncated.xml"));
  EXPECT_NE(e.find("not well-formed XML"), std::string::npos) << e;
}

TEST(FenceMetadataMalformed, NotXml) {
  EXPECT_NE(parse_error(fixture("not_xml.txt")), "");
  EXPECT_NE(parse_error(""), "");
  EXPECT_NE(parse_error("   \n"), "");
}

TEST(FenceMetadataMalformed, WrongRoot) {
  std::string e = parse_error(fixture("wrong_root.xml"));
  EXPECT_NE(e.find("<resource-agents>"), std::string::npos) << e;
  EXPECT_NE(parse_error("<a/><b/>"), "");
}

TEST(FenceMetadataMalformed, ParameterWithoutName) {
  EXPECT_EQ(parse_error(fixture("nameless_parameter.xml")), "metadata of fence_fake: parameter #2 has no name");
}

TEST(FenceMetadataMalformed, UnexpectedShape) {
  EXPECT_EQ(parse_error("<resource-agent><parameters/><actions/></resource-agent>"), "<resource-agent> has no name");
  EXPECT_EQ(parse_error("<resource-agent name=\"fence_x\"><actions/></resource-agent>"),
            "metadata of fence_x has no <parameters>");
  EXPECT_EQ(parse_error("<resource-agent name=\"fence_x\"><parameters/></resource-agent>"),
            "metadata of fence_x has no <actions>");
  EXPECT_EQ(parse_error(synthetic("<parameter name=\"a\"/><parameter name=\"a\"/>")),
            "metadata of fence_fake: parameter 'a' is described twice");
  EXPECT_NE(parse_error(synthetic("<parameter name=\"a b\"/>")), "");
}

TEST(FenceMetadataMalformed, TooLarge) {
  std::string xml = fixture("fence_ipmilan.xml");
  xml.insert(xml.find("<parameters>"), std::string(2 << 20, ' '));
  std::string e = parse_error(xml);
  EXPECT_NE(e.find("more than the 1048576 accepted"), std::string::npos) << e;
}

TEST(FenceMetadataMalformed, DeepNestingIsRefusedNotACrash) {
  // 100000 levels would overflow the stack in the XML reader.
  std::string xml;
  for (int i = 0; i < 100000; ++i) xml += "<a>";
  for (int i = 0; i < 100000; ++i) xml += "</a>";
  ASSERT_LE(xml.size(), kMaxMetadataBytes);
  EXPECT_NE(parse_error(xml).find("nests elements"), std::string::npos);
}

TEST(FenceMetadataMalformed, EveryPrefixIsHandled) {
  // Cut the real metadata anywhere: an error or (only for the whole text) metadata.
  std::string xml = fixture("fence_apc_snmp.xml");
  for (size_t n = 0; n + 1 < xml.size(); n += 37) {
    auto r = parse_metadata(std::string_view(xml).substr(0, n));
    EXPECT_TRUE(std::holds_alternative<std::string>(r)) << n;
  }
}

// ---- validation -------------------------------------------------------------------------

TEST(FenceMetadataValidate, CompleteDevicesAreClean) {
  Validation v = validate_device(agent("fence_apc_snmp"), {{"ip", "10.0.0.5"}, {"snmp_version", "2c"}},
                                 {"community"}, true);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{});

  v = validate_device(agent("fence_redfish"), {{"ip", "10.0.0.9"}, {"username", "admin"}, {"ssl_insecure", "1"}},
                      {"password"}, false);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{});

  v = validate_device(agent("fence_virsh"), {{"ip", "kvm1"}, {"username", "root"}}, {"password"}, true);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{});
}

TEST(FenceMetadataValidate, RequiredMissing) {
  Validation v = validate_device(agent("fence_virsh"), {}, {}, true);
  EXPECT_EQ(v.errors, (Strings{"parameter 'ip' is required by fence_virsh",
                               "parameter 'username' is required by fence_virsh"}));
  v = validate_device(agent("fence_redfish"), {{"ip", "10.0.0.9"}}, {"password"}, false);
  EXPECT_EQ(v.errors, Strings{"parameter 'username' is required by fence_redfish"});
}

TEST(FenceMetadataValidate, RequiredWithDefaultIsNotMissing) {
  // Like fence_pve's username (default root@pam): the agent fills in the default first.
  AgentMetadata md = parse_ok(synthetic(
      "<parameter name=\"serial_port\" required=\"1\"><content type=\"string\" default=\"/dev/ttyS0\"/></parameter>\n"
      "<parameter name=\"ping_targets\" required=\"1\"><content type=\"string\" default=\"\"/></parameter>\n"));
  Validation v = validate_device(md, {}, {}, false);
  EXPECT_EQ(v.errors, Strings{"parameter 'ping_targets' is required by fence_fake"});
}

TEST(FenceMetadataValidate, SecretsCountAsPresent) {
  Validation v = validate_device(agent("fence_virsh"), {{"ip", "kvm1"}}, {"username", "password"}, true);
  EXPECT_EQ(v.errors, Strings{});
}

TEST(FenceMetadataValidate, UnknownWithSuggestion) {
  Validation v = validate_device(agent("fence_ipmilan"), {{"ip", "10.0.0.7"}, {"lanpls", "1"}, {"frobnicate", "1"}},
                                 {"pasword"}, false);
  EXPECT_EQ(v.errors, (Strings{"unknown parameter 'frobnicate' for fence_ipmilan",
                               "unknown parameter 'lanpls' for fence_ipmilan (did you mean 'lanplus'?)",
                               "unknown parameter 'pasword' for fence_ipmilan (given as 'pasword_file') "
                               "(did you mean 'password'?)"}));
  // A near miss of an old name points at its replacement.
  v = validate_device(agent("fence_ipmilan"), {{"ip", "10.0.0.7"}, {"passwdscript", "/x"}}, {}, false);
  EXPECT_EQ(v.errors, Strings{"unknown parameter 'passwdscript' for fence_ipmilan (did you mean 'password_script'?)"});
}

TEST(FenceMetadataValidate, BooleanValues) {
  AgentMetadata md = agent("fence_ipmilan");
  Validation v = validate_device(md, {{"ip", "10.0.0.7"}, {"lanplus", "maybe"}}, {}, false);
  EXPECT_EQ(v.errors, Strings{"parameter 'lanplus' of fence_ipmilan expects a boolean "
                              "(1/0/yes/no/on/off/true/false), got 'maybe'"});
  for (const char* ok : {"1", "0", "yes", "No", "on", "OFF", "true", "False"}) {
    EXPECT_EQ(validate_device(md, {{"ip", "10.0.0.7"}, {"lanplus", ok}}, {}, false).errors, Strings{}) << ok;
  }
  EXPECT_EQ(validate_device(md, {{"ip", "10.0.0.7"}, {"lanplus", ""}}, {}, false).errors.size(), 1u);
}

TEST(FenceMetadataValidate, SelectValues) {
  AgentMetadata md = agent("fence_ipmilan");
  Validation v = validate_device(md, {{"ip", "10.0.0.7"}, {"auth", "x"}}, {}, false);
  EXPECT_EQ(v.errors, Strings{"parameter 'auth' of fence_ipmilan must be one of md5, password, none; got 'x'"});
  // The agent compares choices without regard to case.
  EXPECT_EQ(validate_device(md, {{"ip", "10.0.0.7"}, {"auth", "MD5"}}, {}, false).errors, Strings{});
  v = validate_device(agent("fence_apc_snmp"), {{"ip", "pdu"}, {"snmp_version", "4"}}, {}, true);
  EXPECT_EQ(v.errors, Strings{"parameter 'snmp_version' of fence_apc_snmp must be one of 1, 2c, 3; got '4'"});
}

TEST(FenceMetadataValidate, NumberValues) {
  AgentMetadata md = agent("fence_ipmilan");
  Validation v = validate_device(md, {{"ip", "10.0.0.7"}, {"ipport", "623x"}, {"delay", "5s"}}, {}, false);
  EXPECT_EQ(v.errors, (Strings{"parameter 'delay' of fence_ipmilan expects a whole number of seconds without a "
                               "unit, got '5s'",
                               "parameter 'ipport' of fence_ipmilan expects an integer, got '623x'"}));
  EXPECT_EQ(validate_device(md, {{"ip", "10.0.0.7"}, {"ipport", "6230"}, {"delay", "15"}}, {}, false).errors,
            Strings{});
}

TEST(FenceMetadataValidate, DeprecatedAliasIsAWarning) {
  Validation v = validate_device(agent("fence_ipmilan"), {{"ipaddr", "10.0.0.7"}, {"login", "admin"}}, {"passwd"},
                                 false);
  EXPECT_EQ(v.errors, Strings{});  // the old name satisfies the address rule too
  EXPECT_EQ(v.warnings, (Strings{"parameter 'ipaddr' is deprecated; use 'ip'",
                                 "parameter 'login' is deprecated; use 'username'",
                                 "parameter 'passwd' is deprecated; use 'password'"}));
  // Old names satisfy required parameters.
  v = validate_device(agent("fence_virsh"), {{"ipaddr", "kvm1"}, {"login", "root"}}, {}, true);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings.size(), 2u);
  // Spelling with '_' what the agent lists with '-' is the same name, not an old one.
  v = validate_device(agent("fence_redfish"), {{"ip", "bmc"}, {"username", "u"}, {"redfish_uri", "/r"}}, {}, false);
  EXPECT_EQ(v.warnings, Strings{});
}

TEST(FenceMetadataValidate, UsernameWhereMetadataNamesItLogin) {
  AgentMetadata md = parse_ok(synthetic(
      "<parameter name=\"login\" required=\"1\" obsoletes=\"username\"><content type=\"string\"/></parameter>\n"));
  Validation v = validate_device(md, {{"username", "admin"}}, {}, false);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{"parameter 'username' is deprecated; use 'login'"});
}

TEST(FenceMetadataValidate, SameParameterTwice) {
  Validation v = validate_device(agent("fence_ipmilan"), {{"ip", "a"}, {"ipaddr", "b"}}, {}, false);
  EXPECT_EQ(v.errors, Strings{"parameters 'ip' and 'ipaddr' of fence_ipmilan are the same parameter; keep only 'ip'"});
  v = validate_device(agent("fence_virsh"), {{"ip", "kvm1"}, {"username", "root"}}, {"username"}, true);
  EXPECT_EQ(v.errors,
            Strings{"parameters 'username' and 'username' of fence_virsh are the same parameter; keep only 'username'"});
}

TEST(FenceMetadataValidate, PlugRules) {
  AgentMetadata apc = agent("fence_apc_snmp");
  Validation v = validate_device(apc, {{"ip", "pdu"}}, {}, false);
  EXPECT_EQ(v.errors,
            Strings{"fence_apc_snmp needs a plug: write the device as DEVICE:PLUG in the node's fencing levels"});
  EXPECT_EQ(validate_device(apc, {{"ip", "pdu"}}, {}, true).errors, Strings{});

  AgentMetadata no_plug = parse_ok(synthetic("<parameter name=\"ip\" required=\"1\"/>\n"));
  v = validate_device(no_plug, {{"ip", "x"}}, {}, true);
  EXPECT_EQ(v.errors,
            Strings{"fence_fake takes no plug: write the device without ':PLUG' in the node's fencing levels"});
  EXPECT_EQ(validate_device(no_plug, {{"ip", "x"}}, {}, false).errors, Strings{});
}

TEST(FenceMetadataValidate, PortAsIpAgentsStillNeedAnAddress) {
  AgentMetadata md = agent("fence_ipmilan");
  const std::string no_ip =
      "parameter 'ip' is required by fence_ipmilan (or set port_as_ip and give the address as the plug)";
  EXPECT_EQ(validate_device(md, {}, {}, false).errors, Strings{no_ip});
  EXPECT_EQ(validate_device(md, {{"port_as_ip", "1"}}, {}, false).errors, Strings{no_ip});
  EXPECT_EQ(validate_device(md, {{"port_as_ip", "0"}}, {}, true).errors, Strings{no_ip});
  // The plug is the address.
  Validation v = validate_device(md, {{"port_as_ip", "yes"}}, {}, true);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{});
  // A plug without port_as_ip does nothing for this agent.
  v = validate_device(md, {{"ip", "10.0.0.7"}}, {}, true);
  EXPECT_EQ(v.errors, Strings{});
  EXPECT_EQ(v.warnings, Strings{"fence_ipmilan ignores the plug unless port_as_ip is set"});
  // The agent's own check accepts a bridge target instead of an address.
  EXPECT_EQ(validate_device(md, {{"target", "0x20"}}, {}, false).errors, Strings{});
}

TEST(FenceMetadataValidate, NamesHafrontSets) {
  Validation v = validate_device(agent("fence_apc_snmp"),
                                 {{"ip", "pdu"}, {"action", "off"}, {"nodename", "a"}, {"port", "3"}}, {}, true);
  EXPECT_EQ(v.errors, (Strings{"parameter 'action' is set by hafront; remove it from the device",
                               "parameter 'nodename' is set by hafront; remove it from the device",
                               "parameter 'port' is set by hafront; remove it from the device (write the plug as "
                               "DEVICE:PLUG in the node's fencing levels)"}));
  // A plug given as a parameter does not stand in for DEVICE:PLUG.
  v = validate_device(agent("fence_apc_snmp"), {{"ip", "pdu"}, {"plug", "3"}}, {}, false);
  EXPECT_EQ(v.errors.size(), 2u);
}

TEST(FenceMetadataValidate, HelpAndVersionWouldFakeASuccess) {
  // With either on stdin the agent prints text and exits 0: a fence that did nothing.
  Validation v = validate_device(agent("fence_ipmilan"), {{"ip", "10.0.0.7"}, {"help", "0"}, {"version", "no"}}, {},
                                 false);
  EXPECT_EQ(v.errors, (Strings{"parameter 'help' makes fence_ipmilan print text and exit 0 without fencing; remove it",
                               "parameter 'version' makes fence_ipmilan print text and exit 0 without fencing; "
                               "remove it"}));
}

}  // namespace
}  // namespace hafront::fence
