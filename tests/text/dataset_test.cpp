// Text reading and the text.files dataset: formats, UTF-8 validation and its
// skip/fail policy, empty files and entries, long entries, labels and the
// seeded split.
#include <map>
#include <set>

#include <sslab/host/loader.h>

#include "text_dataset.h"
#include "text_reader.h"
#include "text_test_util.h"

namespace {

using namespace text_test;
using sslab::text::find_invalid_utf8;
using sslab::text::read_entries;
using sslab::text::ReadStats;
using sslab::text::TextFormat;

int64_t bad(const std::string& s) { return find_invalid_utf8(s.data(), s.size()); }

TEST(TextUtf8, AcceptsValidAndFindsTheFirstBadSequence) {
  EXPECT_EQ(bad("plain ascii"), -1);
  EXPECT_EQ(bad("gr\xc3\xbc\xc3\x9f"
                "e \xe2\x82\xac \xf0\x9f\x98\x80"),
            -1);  // ü ß € and an emoji
  EXPECT_EQ(bad("ab\xff"), 2);
  EXPECT_EQ(bad("ab\x80"), 2);             // lone continuation byte
  EXPECT_EQ(bad("a\xc0\xaf"), 1);          // overlong '/'
  EXPECT_EQ(bad("a\xe0\x80\xaf"), 1);      // overlong, 3 bytes
  EXPECT_EQ(bad("x\xed\xa0\x80"), 1);      // a UTF-16 surrogate
  EXPECT_EQ(bad("x\xf4\x90\x80\x80"), 1);  // past U+10FFFF
  EXPECT_EQ(bad("abc\xe2\x82"), 3);        // truncated at the end
  EXPECT_EQ(bad("\xc3\xa9\xc3("), 2);      // bad continuation
}

TEST(TextReader, SplitsFortuneEntriesAndSkipsBlankOnes) {
  TempDir dir;
  std::string f = dir.write("f", "first entry\nsecond line\n%\n\n%\n   \n%\r\nthird\r\n%\nlast without percent\n");
  ReadStats st;
  auto e = read_entries(f, TextFormat::Fortune, false, &st);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].text, "first entry\nsecond line");
  EXPECT_EQ(e[1].text, "third");
  EXPECT_EQ(e[2].text, "last without percent");
  EXPECT_EQ(e[0].offset, 0);
  EXPECT_EQ(st.empty, 2);
  std::string g = dir.write("g", "one\n\ntwo\r\n  three  \n");
  auto l = read_entries(g, TextFormat::Lines, false, &st);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[2].text, "three");
  EXPECT_EQ(l[2].offset, 10);
}

TEST(TextReader, InvalidUtf8NamesFileAndByteOffsetOrIsSkippedAndCounted) {
  TempDir dir;
  std::string text = "good one\n%\nbad \xff here\n%\nfine\n";
  size_t offset = text.find('\xff');
  std::string f = dir.write("latin1.txt", text);
  std::string msg = user_error([&] { read_entries(f, TextFormat::Fortune, false); });
  EXPECT_NE(msg.find(f), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid UTF-8 at byte offset " + std::to_string(offset)), std::string::npos) << msg;
  ReadStats st;
  auto e = read_entries(f, TextFormat::Fortune, true, &st);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].text, "fine");
  EXPECT_EQ(st.invalid, 1);
  // The offset stays exact after CRLF line ends.
  std::string crlf = "a\r\nb\r\nc\xfe\r\n";
  std::string g = dir.write("crlf.txt", crlf);
  msg = user_error([&] { read_entries(g, TextFormat::Fortune, false); });
  EXPECT_NE(msg.find("byte offset " + std::to_string(crlf.find('\xfe'))), std::string::npos) << msg;
}

std::string dataset_toml(const std::string& body) {
  return tokenizer_toml() + "[data.train]\ntype = \"text.files\"\n" + body;
}

TEST(TextDataset, InvalidUtf8FollowsTheRecipePolicy) {
  TempDir dir;
  std::string text = "the cat\n%\nthe \xc3\x28 dog\n%\nsat on\n";
  dir.write("d/a", text);
  Env fail(dataset_toml("paths = [\"" + dir / "d" + "\"]\n"));
  std::string msg = user_error([&] { fail.dataset("train"); });
  EXPECT_NE(msg.find(dir / "d/a"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte offset " + std::to_string(text.find('\xc3'))), std::string::npos) << msg;
  Env skip(dataset_toml("paths = [\"" + dir / "d" + "\"]\non_error = \"skip\"\n"));
  auto ds = std::dynamic_pointer_cast<sslab::text::TextDataset>(skip.dataset("train"));
  ASSERT_TRUE(ds);
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->stats().invalid, 1);
}

TEST(TextDataset, EmptyFilesGiveNoSamplesAndAllEmptyIsAnError) {
  TempDir dir;
  dir.write("d/empty", "");
  dir.write("d/blank", "\n%\n  \n%\n");
  Env env(dataset_toml("paths = [\"" + dir / "d" + "\"]\n"));
  std::string msg = user_error([&] { env.dataset("train"); });
  EXPECT_NE(msg.find("no entries"), std::string::npos) << msg;
  dir.write("d/full", "the cat sat\n%\nthe dog ran\n");
  Env env2(dataset_toml("paths = [\"" + dir / "d" + "\"]\n"));
  auto ds = env2.dataset("train");
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->num_classes(), 3);  // blank, empty, full: labels come from the file names
  EXPECT_EQ(ds->get(0).at("label").item<int64_t>(), 2);
}

TEST(TextDataset, LongEntriesAreTruncatedOrWindowed) {
  TempDir dir;
  std::string long_entry;
  for (int i = 0; i < 60; ++i) long_entry += "the cat sat on the mat ";
  dir.write("d/a", "the dog\n%\n" + long_entry + "\n");
  auto& tok = *fixture().tok;
  auto pieces = tok.encode(sslab::str(long_entry.substr(0, long_entry.size() - 1)));
  ASSERT_GT(pieces.size(), 100u);
  Env env(dataset_toml("paths = [\"" + dir / "d" + "\"]\nmax_length = 16\nlabel = \"none\"\n"));
  auto ds = std::dynamic_pointer_cast<sslab::text::TextDataset>(env.dataset("train"));
  ASSERT_EQ(ds->size(), 2);
  for (int64_t i = 0; i < 2; ++i) {
    auto ids = ds->get(i).at("text.ids");
    EXPECT_EQ(ds->get(i).count("label"), 0u);
    EXPECT_EQ(ids[0].item<int64_t>(), 2);
    EXPECT_EQ(ids[-1].item<int64_t>(), 3);
    if (ds->text(i).size() > 100) {
      ASSERT_EQ(ids.size(0), 16);
      for (int64_t k = 0; k < 14; ++k) EXPECT_EQ(ids[k + 1].item<int64_t>(), pieces[static_cast<size_t>(k)]);
    }
  }
  Env win(dataset_toml("paths = [\"" + dir / "d" + "\"]\nmax_length = 16\nlong_entries = \"window\"\n"));
  auto ws = win.dataset("train");
  const int64_t n = static_cast<int64_t>(pieces.size()), body = 14;
  EXPECT_EQ(ws->size(), 1 + (n + body - 1) / body);
  std::vector<int64_t> joined;
  for (int64_t i = 0; i < ws->size(); ++i) {
    auto ids = ws->get(i).at("text.ids");
    EXPECT_LE(ids.size(0), 16);
    if (ids.size(0) < 6) continue;  // the short entry ("the dog")
    for (int64_t k = 1; k + 1 < ids.size(0); ++k) joined.push_back(ids[k].item<int64_t>());
  }
  // The windows of the long entry, in sample order, cover its pieces (windows of one entry are consecutive).
  EXPECT_EQ(joined, pieces);
}

TEST(TextDataset, LabelsFromFileDirAndManifest) {
  TempDir dir;
  dir.write("en/a", "the cat\n%\nthe dog\n");
  dir.write("en/b", "sat on\n");
  dir.write("en/b.dat", "index file\n");
  dir.write("de/c", "birds sing\n%\nwinds blow\n%\nhills today\n");
  Env by_dir(dataset_toml("paths = [\"" + dir / "en" + "\", \"" + dir / "de" + "\"]\nlabel = \"dir\"\n"));
  auto ds = std::dynamic_pointer_cast<sslab::text::TextDataset>(by_dir.dataset("train"));
  EXPECT_EQ(ds->size(), 6);
  EXPECT_EQ(ds->classes(), (std::vector<std::string>{"de", "en"}));
  for (int64_t i = 0; i < ds->size(); ++i) {
    bool german = ds->text(i).find("birds") == 0 || ds->text(i).find("winds") == 0 || ds->text(i).find("hills") == 0;
    EXPECT_EQ(ds->get(i).at("label").item<int64_t>(), german ? 0 : 1) << ds->text(i);
  }
  dir.write("m.tsv", "# file\tlabel\nen/a\tanimals\nen/b\tplaces\nde\tnature\n");
  Env by_manifest(dataset_toml("manifest = \"" + dir / "m.tsv" + "\"\nlabel = \"manifest\"\n"));
  auto dm = std::dynamic_pointer_cast<sslab::text::TextDataset>(by_manifest.dataset("train"));
  EXPECT_EQ(dm->classes(), (std::vector<std::string>{"animals", "nature", "places"}));
  EXPECT_EQ(dm->size(), 6);
  dir.write("bad.tsv", "en/a animals\n");
  Env bad(dataset_toml("manifest = \"" + dir / "bad.tsv" + "\"\nlabel = \"manifest\"\n"));
  std::string msg = user_error([&] { bad.dataset("train"); });
  EXPECT_NE(msg.find("bad.tsv:1"), std::string::npos) << msg;
}

TEST(TextDataset, SeededSplitIsStratifiedDisjointAndDeterministic) {
  TempDir dir;
  auto s = corpus_sentences(300, 11);
  dir.write("d/x", fortune_text({s.begin(), s.begin() + 100}));
  dir.write("d/y", fortune_text({s.begin() + 100, s.begin() + 300}));
  auto texts = [&](const std::string& split, int seed) {
    Env env(dataset_toml("paths = [\"" + dir / "d" + "\"]\nsplit = \"" + split +
                         "\"\nsplit_seed = " + std::to_string(seed) + "\n"));
    auto ds = std::dynamic_pointer_cast<sslab::text::TextDataset>(env.dataset("train"));
    std::vector<std::string> out;
    std::map<int64_t, int> per_class;
    for (int64_t i = 0; i < ds->size(); ++i) {
      out.push_back(ds->text(i));
      ++per_class[ds->label(i)];
    }
    if (split == "test") {
      EXPECT_EQ(per_class[0], 20);
      EXPECT_EQ(per_class[1], 40);
    }
    return out;
  };
  auto train = texts("train", 3), test = texts("test", 3);
  EXPECT_EQ(train.size(), 240u);
  EXPECT_EQ(test.size(), 60u);
  std::multiset<std::string> all(train.begin(), train.end());
  all.insert(test.begin(), test.end());
  EXPECT_EQ(all, std::multiset<std::string>(s.begin(), s.end()));
  EXPECT_EQ(texts("test", 3), test);
  EXPECT_NE(texts("test", 4), test);
  // The sample order mixes the classes: the first 20 training samples hold both.
  Env env(dataset_toml("paths = [\"" + dir / "d" + "\"]\nsplit = \"train\"\n"));
  auto ds = env.dataset("train");
  std::set<int64_t> first;
  for (int64_t i = 0; i < 20; ++i) first.insert(ds->get(i).at("label").item<int64_t>());
  EXPECT_EQ(first.size(), 2u);
}

TEST(TextDataset, FileOrderKeepsTheLinesAsListedForPairing) {
  TempDir dir;
  auto s = corpus_sentences(40, 5);
  std::string lines;
  for (const auto& x : s) lines += x + "\n";
  dir.write("lines.txt", lines);
  auto texts = [&](const std::string& order) {
    Env env(dataset_toml("paths = [\"" + dir / "lines.txt" + "\"]\nformat = \"lines\"\nlabel = \"none\"\norder = \"" +
                         order + "\"\n"));
    auto ds = std::dynamic_pointer_cast<sslab::text::TextDataset>(env.dataset("train"));
    std::vector<std::string> out;
    for (int64_t i = 0; i < ds->size(); ++i) out.push_back(ds->text(i));
    return out;
  };
  EXPECT_EQ(texts("file"), s);      // ssl.paired pairs by index: the file's order
  EXPECT_NE(texts("seeded"), s);    // the default shuffles
}

TEST(TextDataset, BatchesPadWithPadIdAndMarkRealTokens) {
  TempDir dir;
  dir.write("d/a", "the cat\n%\nthe dog ran far away from home\n");
  Env env(dataset_toml("paths = [\"" + dir / "d" + "\"]\n"));
  auto ds = env.dataset("train");
  sslab::Batch b = sslab::collate({ds->get(0), ds->get(1)});
  auto ids = b.at("text.ids"), mask = b.at("text.ids.mask"), len = b.at("text.ids.length");
  for (int64_t i = 0; i < 2; ++i) {
    int64_t n = len[i].item<int64_t>();
    EXPECT_EQ(ids[i][n - 1].item<int64_t>(), 3);
    EXPECT_TRUE(mask[i].narrow(0, 0, n).all().item<bool>());
    if (n < ids.size(1)) {
      EXPECT_FALSE(mask[i].narrow(0, n, ids.size(1) - n).any().item<bool>());
      EXPECT_TRUE(ids[i].narrow(0, n, ids.size(1) - n).eq(fixture().tok->special_id("[PAD]")).all().item<bool>());
    }
  }
}

}  // namespace
