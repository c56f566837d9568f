// The corpus's prompts and their voice-neutral content: small tables of topics
// (facts, tasks, opinions, words, numbers) filled into prompt templates of the eight
// probe categories (eval/probe_set.cpp's flavour) and the lab's extra categories,
// then varied in politeness, preamble, case and punctuation. Contents avoid every
// shipped persona's anti-signal words ("cool", "okay", "no problem", lists), so the
// persona voice can wrap them unchanged.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "base/error.h"
#include "lab/corpus_parts.h"

namespace character::lab::corpus_detail {

std::string upper_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string lower_first(std::string s) {
  // Not "I", "I'm", proper nouns stay wrong-cased rarely; the prompts' own words are common.
  if (s.size() > 1 && s[0] == 'I' && (s[1] == ' ' || s[1] == '\'')) return s;
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

bool ends_with_any(const std::string& s, const std::string& chars) {
  return !s.empty() && chars.find(s.back()) != std::string::npos;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

namespace {

using Strings = std::vector<std::string>;

struct Fact {
  Strings questions;
  std::string answer;
};

const std::vector<Fact>& facts() {
  static const std::vector<Fact> table = {
      {{"What is photosynthesis?", "How does photosynthesis work?", "Explain photosynthesis."},
       "Plants use sunlight, water and carbon dioxide to make sugar, and they release oxygen as they do it."},
      {{"Why is the sky blue?", "What makes the sky blue?"},
       "Air scatters the blue part of sunlight more than the red part, so blue reaches your eyes from every "
       "direction of the sky."},
      {{"How do vaccines work?", "What does a vaccine do?"},
       "A vaccine shows the immune system a harmless piece or copy of a germ, so the body learns to fight the real "
       "germ quickly later."},
      {{"How far is the moon from the Earth?", "What is the distance to the moon?"},
       "The moon is about 384,000 kilometres from the Earth on average."},
      {{"At what temperature does water boil?", "When does water boil?"},
       "At sea level, water boils at 100 degrees Celsius, which is 212 degrees Fahrenheit."},
      {{"How many chambers does the human heart have?"},
       "The human heart has four chambers: two atria on top and two ventricles below them."},
      {{"What causes tides?", "Why do oceans have tides?"},
       "Tides come mainly from the pull of the moon's gravity on the oceans, with a smaller pull from the sun."},
      {{"Why do we have seasons?", "What causes the seasons?"},
       "The Earth's axis is tilted, so each half of the planet leans toward the sun for part of the year and away "
       "from it for the rest."},
      {{"How does a rainbow form?", "Why do rainbows appear?"},
       "Sunlight enters raindrops, bends, reflects inside them and splits into its colours, which we see as a "
       "rainbow."},
      {{"What is gravity?", "How does gravity work?"},
       "Gravity is the pull that masses have on each other; it keeps us on the ground and the planets around the "
       "sun."},
      {{"What is DNA?", "What does DNA do?"},
       "DNA is the molecule that carries the instructions for building and running living things, written in four "
       "chemical letters."},
      {{"What is the largest planet in the solar system?", "Which planet is the biggest?"},
       "Jupiter is the largest planet in the solar system, more than eleven times wider than the Earth."},
      {{"How fast does light travel?", "What is the speed of light?"},
       "Light travels about 300,000 kilometres per second in a vacuum."},
      {{"Why are bees important?", "What do bees do for plants?"},
       "Bees carry pollen from flower to flower, which helps many plants, crops included, make fruit and seeds."},
      {{"How does the internet work?"},
       "The internet is a network of computers that send each other small packets of data, routed along many "
       "paths and put back together at the end."},
      {{"What is a volcano?", "How do volcanoes form?"},
       "A volcano is an opening in the Earth's crust where melted rock, gas and ash escape from below."},
      {{"Explain some facts about the world.", "Tell me some facts about the Earth."},
       "The Earth is about 4.5 billion years old, oceans cover about 71 percent of its surface, and around 8 "
       "billion people live on it."},
      {{"What is the deepest part of the ocean?"},
       "The deepest known point is the Challenger Deep in the Mariana Trench, nearly 11,000 metres down."},
      {{"How tall is Mount Everest?", "What is the highest mountain?"},
       "Mount Everest is about 8,849 metres tall, the highest mountain above sea level."},
      {{"Why do leaves change colour in autumn?", "Why do leaves turn yellow?"},
       "In autumn, trees stop making green chlorophyll, so the yellow and orange pigments already in the leaves "
       "show through."},
      {{"What is electricity?"},
       "Electricity is the flow of electric charge, usually electrons moving through a wire, and it powers lamps "
       "and machines."},
      {{"What causes thunder?", "Why does thunder rumble?"},
       "Lightning heats the air so fast that it expands with a bang, and that sound is thunder."},
      {{"How do airplanes fly?", "How does a plane stay in the air?"},
       "A plane's wings are shaped so that moving air pushes them upward, and the engines keep the plane moving "
       "fast enough for that lift."},
      {{"Why is the ocean salty?"},
       "Rivers carry tiny amounts of salt from rocks into the ocean, and when the water evaporates the salt stays "
       "behind."},
      {{"How many bones are in the human body?"}, "An adult human body has 206 bones; a baby is born with about 300."},
      {{"What is the Great Wall of China?"},
       "The Great Wall of China is a chain of walls and towers built over many centuries, thousands of kilometres "
       "long in all."},
  };
  return table;
}

struct Capital {
  const char* country;
  const char* city;
};
constexpr std::array<Capital, 20> kCapitals = {{
    {"France", "Paris"},     {"Japan", "Tokyo"},      {"Italy", "Rome"},           {"Spain", "Madrid"},
    {"Germany", "Berlin"},   {"Canada", "Ottawa"},    {"Australia", "Canberra"},   {"Egypt", "Cairo"},
    {"Kenya", "Nairobi"},    {"Brazil", "Brasília"},  {"Peru", "Lima"},            {"Norway", "Oslo"},
    {"India", "New Delhi"},  {"Mexico", "Mexico City"}, {"China", "Beijing"},      {"Portugal", "Lisbon"},
    {"Greece", "Athens"},    {"Ireland", "Dublin"},   {"Argentina", "Buenos Aires"}, {"Türkiye", "Ankara"},
}};

const std::vector<Fact>& instructions() {
  static const std::vector<Fact> table = {
      {{"How do I boil an egg?", "What is the best way to boil an egg?"},
       "Put the egg in boiling water for about nine minutes for a firm yolk, then chill it in cold water before "
       "peeling."},
      {{"Help me write an email to my boss asking for a day off.", "Write a short email asking for a day off."},
       "Try this: \"Hi Sam, I would like to take Friday off for a personal matter. My tasks are up to date, and "
       "Alex can cover anything urgent. Thank you for considering it.\""},
      {{"Explain how to reverse a string in Python.", "How do I reverse a string in Python?"},
       "In Python, slicing does it: `text[::-1]` gives the string reversed, and `''.join(reversed(text))` works "
       "too."},
      {{"How do I sort a list in Python?"},
       "Call `sorted(items)` for a new sorted list, or `items.sort()` to sort the list in place."},
      {{"Give me three tips for better sleep.", "How can I sleep better?"},
       "Keep the same bedtime every night, put screens away an hour before bed, and keep the bedroom dark and a "
       "little chilly."},
      {{"Can you help me plan a weekly budget?", "How do I make a budget?"},
       "Start with your income, subtract fixed costs like rent and bills, set amounts for food and transport, and "
       "put what is left toward savings."},
      {{"How do I make a cup of tea?"},
       "Pour boiling water over a tea bag, wait three to five minutes, then take the bag out and add milk or sugar "
       "if you like."},
      {{"Write a to-do list for tomorrow.", "Plan my day for tomorrow."},
       "Tomorrow: answer emails in the morning, finish the report before lunch, take a walk, and call a friend in "
       "the evening."},
      {{"How do I plant a tree?"},
       "Dig a hole twice as wide as the roots, set the tree at the same depth it grew before, fill the hole with "
       "soil and water it well."},
      {{"How do I tie a tie?"},
       "Cross the wide end over the narrow end, wrap it around once, bring it up through the neck loop and down "
       "through the knot, then tighten."},
      {{"How do I write a for loop in C?"},
       "Write `for (int i = 0; i < n; ++i) { ... }`: it sets i to zero, runs the body while i is below n, and adds "
       "one each time."},
      {{"How do I center a div in CSS?"},
       "Give the parent `display: flex; justify-content: center; align-items: center;` and the child sits in the "
       "middle."},
      {{"How do I apologise to a friend?"},
       "Say plainly what you did, say you regret it without excuses, and ask what you can do to make it right."},
  };
  return table;
}

struct Choice {
  std::string prompt;
  std::string opinion;  // first person, e.g. "I would pick tea, because ..."
};

const std::vector<Choice>& opinions() {
  static const std::vector<Choice> table = {
      {"What's your favorite book?", "I would pick Don Quixote, because it is funny and sad at once."},
      {"What's your favourite book?", "I would pick The Hobbit, because it turns a small journey into a large one."},
      {"What do you think about social media?",
       "Social media keeps friends in touch, but it works best in small doses, with time away from the screen."},
      {"Is it better to be a morning person or a night owl?",
       "Neither is better; what matters is keeping a steady rhythm that lets you sleep enough."},
      {"What is the meaning of life?",
       "I think meaning comes from the people we care for and the work we choose to do well."},
      {"Do you prefer cats or dogs?", "I would choose dogs for company on long walks, though cats have their charm."},
      {"What is the best smartphone to buy?",
       "The best phone is the one that fits your budget; compare battery life, the camera and how long it gets "
       "updates."},
      {"Tea or coffee?", "I would choose tea, because it is gentle and there is a kind for every hour."},
      {"Would you rather live in the city or the countryside?",
       "I would choose the countryside, for the quiet and the long view, with a city close enough to visit."},
      {"What's your favorite season?", "I would pick autumn, for the colours and the first cold mornings."},
      {"What is your favorite color?", "I would pick deep green, the colour of a forest after rain."},
      {"Which is better, summer or winter?",
       "Summer has long days, winter has short ones and warm rooms; I lean toward summer."},
      {"What do you think about homework?", "A little homework helps practice, but too much crowds out rest and play."},
  };
  return table;
}

struct Word {
  const char* word;
  const char* meaning;
};
constexpr std::array<Word, 16> kWords = {{
    {"serendipity", "finding something good by chance, without looking for it"},
    {"ephemeral", "lasting for a very short time"},
    {"algorithm", "a list of exact steps for solving a problem or doing a task"},
    {"democracy", "a system of government in which the people choose their leaders by voting"},
    {"metaphor", "a figure of speech that describes one thing as if it were another"},
    {"empathy", "the ability to understand and share the feelings of another person"},
    {"inflation", "a general rise in prices, so that money buys less over time"},
    {"ecosystem", "a community of living things together with the place they live in"},
    {"nostalgia", "a fond longing for the past"},
    {"resilience", "the ability to recover quickly from difficulty"},
    {"irony", "a gap between what is said or expected and what is meant or happens"},
    {"habitat", "the natural home of an animal or plant"},
    {"velocity", "speed in a given direction"},
    {"photon", "a single particle of light"},
    {"mammal", "a warm-blooded animal that feeds its young with milk"},
    {"haiku", "a short Japanese poem of three lines with five, seven and five syllables"},
}};

struct Pair {
  const char* a;
  const char* b;
  const char* difference;
};
constexpr std::array<Pair, 7> kPairs = {{
    {"weather", "climate", "Weather is what the air does today; climate is the pattern of weather over many years."},
    {"a virus", "bacteria",
     "Bacteria are living cells that can multiply on their own; a virus needs a host cell to copy itself."},
    {"speed", "velocity", "Speed says how fast something moves; velocity also says in which direction."},
    {"baking soda", "baking powder",
     "Baking soda needs an acid in the recipe to rise; baking powder already carries its own acid."},
    {"an alligator", "a crocodile",
     "An alligator has a wide, rounded snout; a crocodile has a narrower, pointed one with more teeth showing."},
    {"a lake", "a pond", "A lake is usually deep enough that sunlight does not reach its whole floor; a pond is "
                        "shallow all over."},
    {"RAM", "storage", "RAM holds what the computer works on right now and forgets it when off; storage keeps files "
                       "for good."},
}};

struct Advice {
  const char* goal;  // completes "How can I ..."
  const char* advice;
};
constexpr std::array<Advice, 9> kAdvice = {{
    {"stay focused while studying",
     "Work in short blocks of about 25 minutes, put your phone in another room, and rest a little between blocks."},
    {"learn a new language",
     "Practise a little every day, listen to native speakers, and start speaking early, even with mistakes."},
    {"save money", "Track what you spend for a month, cut the costs you do not value, and move a fixed amount to "
                   "savings on payday."},
    {"make new friends", "Join a club or class around something you enjoy, show up regularly, and ask people simple "
                         "questions about themselves."},
    {"deal with stress",
     "Breathe slowly, take a walk, talk to someone you trust, and break the problem into smaller pieces."},
    {"get better at running",
     "Run slowly most of the time, add a little distance each week, and rest between hard runs."},
    {"prepare for a job interview",
     "Read about the company, practise answers to common questions out loud, and prepare two questions of your "
     "own."},
    {"wake up earlier", "Move your bedtime earlier by fifteen minutes every few days and open the curtains as soon as "
                        "you wake."},
    {"write better essays", "State your main point early, give each paragraph one idea, and cut every sentence that "
                            "does not help the point."},
}};

const Strings kThings = {"moon", "sea", "rain", "autumn", "city at night", "winter", "candle", "stars",
                         "wind", "garden", "morning", "old bridge", "mountain", "river"};
const Strings kCreatures = {"fox", "turtle", "robot", "dragon", "little boat", "lost kitten", "lighthouse keeper",
                            "baker", "crow"};
const Strings kScenes = {"sunset", "rainy street", "busy market", "quiet forest", "snowy morning", "harbour at dawn"};
const Strings kStopTargets = {"a pirate", "a poet", "Shakespeare", "that", "this", "a robot", "a character",
                              "someone from a book"};

std::string poem(Rng& rng, const std::string& thing) {
  switch (rng.below(3)) {
    case 0:
      return "Here is a short poem about the " + thing + ":\nThe " + thing + " keeps its quiet way,\nit stays " +
             "a while and will not stay,\nand leaves a little of the day.";
    case 1:
      return "A poem about the " + thing + ":\nOver roofs the " + thing + " goes,\nwhere it travels no one " +
             "knows,\nsoft as evening, slow as snows.";
    default:
      return "Some lines for the " + thing + ":\nI looked for the " + thing + " and found\nit moving " +
             "without a sound,\nthe oldest friend for miles around.";
  }
}

std::string story(Rng& rng, const std::string& creature) {
  static const Strings goals = {"the edge of the map", "a lost key", "a friend", "the biggest tree in the world",
                                "the source of a song"};
  static const Strings endings = {"the journey had mattered more than the prize",
                                  "it had been carrying what it wanted all along",
                                  "a friend made on the road is worth the whole trip",
                                  "patience opens more doors than speed"};
  return "Once upon a time, a " + creature + " set out to find " + rng.pick(goals) +
         ". After many days on the road, it learned that " + rng.pick(endings) + ".";
}

const Strings kJokes = {
    "Why did the scarecrow win a prize? Because he was outstanding in his field.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "What do you call a fish with no eyes? A fsh.",
    "Why did the math book look sad? It had too many problems.",
    "Why can't a bicycle stand up by itself? It is two-tired.",
    "What do you call a bear with no teeth? A gummy bear.",
};

std::string arithmetic_content(Rng& rng, std::string& prompt) {
  const int a = static_cast<int>(rng.below(90)) + 2, b = static_cast<int>(rng.below(90)) + 2;
  switch (rng.below(4)) {
    case 0: {
      static const Strings forms = {"What is {a} plus {b}?", "What's {a} + {b}?", "Add {a} and {b}.",
                                    "How much is {a} plus {b}?"};
      prompt = replace_all(replace_all(rng.pick(forms), "{a}", std::to_string(a)), "{b}", std::to_string(b));
      return std::to_string(a) + " plus " + std::to_string(b) + " is " + std::to_string(a + b) + ".";
    }
    case 1: {
      const int hi = std::max(a, b), lo = std::min(a, b);
      static const Strings forms = {"What is {a} minus {b}?", "What's {a} - {b}?", "Subtract {b} from {a}."};
      prompt = replace_all(replace_all(rng.pick(forms), "{a}", std::to_string(hi)), "{b}", std::to_string(lo));
      return std::to_string(hi) + " minus " + std::to_string(lo) + " is " + std::to_string(hi - lo) + ".";
    }
    default: {
      const int x = static_cast<int>(rng.below(11)) + 2, y = static_cast<int>(rng.below(11)) + 2;
      static const Strings forms = {"What is {a} times {b}?", "What's {a} * {b}?", "Calculate {a} times {b}.",
                                    "Just answer plainly. What is {a} times {b}?", "Multiply {a} by {b}."};
      prompt = replace_all(replace_all(rng.pick(forms), "{a}", std::to_string(x)), "{b}", std::to_string(y));
      return std::to_string(x) + " times " + std::to_string(y) + " is " + std::to_string(x * y) + ".";
    }
  }
}

// A fact for "Tell me more": any topic of the fact table, introduced as more.
std::string more_content(Rng& rng) {
  static const Strings intros = {"There is more to say.", "Here is another thing worth knowing.", "One more thing.",
                                 "Consider this as well."};
  return rng.pick(intros) + " " + rng.pick(facts()).answer;
}

Exchange exchange(const std::string& category, std::string prompt, std::string content, Intent intent) {
  return Exchange{category, std::move(prompt), std::move(content), intent};
}

Exchange probe_exchange(Rng& rng, const std::string& category) {
  if (category == "identity") {
    static const Strings prompts = {"Tell me about yourself.", "Who are you?", "What's your name?",
                                    "Describe your personality.", "What do you do?", "Introduce yourself.",
                                    "What should I call you?", "Tell me something about you."};
    return exchange(category, rng.pick(prompts), "", Intent::kIdentity);
  }
  if (category == "continuation") {
    static const Strings prompts = {"Tell me more.", "Tell me more please.", "Go on.", "Continue.",
                                    "And then?", "What else?", "Keep going.", "Please go on, I am listening.",
                                    "Say more about that.", "Tell me more about it."};
    return exchange(category, rng.pick(prompts), more_content(rng), Intent::kContinue);
  }
  if (category == "factual") {
    if (rng.chance(0.3)) {
      const Capital& c = kCapitals[rng.below(kCapitals.size())];
      const std::string country = c.country;
      static const Strings forms = {"What is the capital of {c}?", "What's the capital city of {c}?",
                                    "Which city is the capital of {c}?"};
      return exchange(category, replace_all(rng.pick(forms), "{c}", country),
                      std::string("The capital of ") + c.country + " is " + c.city + ".", Intent::kContent);
    }
    const Fact& f = rng.pick(facts());
    return exchange(category, rng.pick(f.questions), f.answer, Intent::kContent);
  }
  if (category == "creative") {
    switch (rng.below(5)) {
      case 0: {
        const std::string thing = rng.pick(kThings);
        return exchange(category, "Write a short poem about the " + thing + ".", poem(rng, thing), Intent::kContent);
      }
      case 1: {
        const std::string who = rng.pick(kCreatures);
        return exchange(category, rng.chance(0.5) ? "Tell me a story." : "Tell me a story about a " + who + ".",
                        story(rng, who), Intent::kContent);
      }
      case 2: return exchange(category, "Tell me a joke.", rng.pick(kJokes), Intent::kContent);
      case 3: {
        const std::string scene = rng.pick(kScenes);
        return exchange(category, "Describe a " + scene + " in three sentences.",
                        "The " + scene + " is full of colour and small sounds. Everything seems to slow down for a "
                        "moment. It is the kind of view you remember for a long time.",
                        Intent::kContent);
      }
      default:
        return exchange(category, "Invent a new holiday and explain how people celebrate it.",
                        "Kindness Day falls on the first Monday of spring: people leave small notes and gifts for "
                        "neighbours and share a meal with someone new.",
                        Intent::kContent);
    }
  }
  if (category == "instruction") {
    const Fact& f = rng.pick(instructions());
    return exchange(category, rng.pick(f.questions), f.answer, Intent::kContent);
  }
  if (category == "opinion") {
    const Choice& c = rng.pick(opinions());
    return exchange(category, c.prompt, c.opinion, Intent::kOpinion);
  }
  if (category == "meta") {
    switch (rng.below(6)) {
      case 0: {
        static const Strings p = {"Are you an AI?", "Are you a chatbot?", "Are you a real person?",
                                  "Are you an AI assistant?", "Am I talking to a computer?"};
        return exchange(category, rng.pick(p), "", Intent::kWhatAreYou);
      }
      case 1: {
        static const Strings p = {"What model are you?", "Which language model are you?", "What are you running on?"};
        return exchange(category, rng.pick(p), "", Intent::kWhatAreYou);
      }
      case 2: {
        static const Strings p = {"Who created you?", "Who made you?", "Who built you?"};
        return exchange(category, rng.pick(p), "", Intent::kCreator);
      }
      case 3: {
        static const Strings p = {"What are your limitations?", "What can't you do?", "Do you ever make mistakes?"};
        return exchange(category, rng.pick(p), "", Intent::kLimits);
      }
      default: {
        static const Strings p = {"Can you stop talking like {x}?", "Please stop talking like {x}.",
                                  "Can you stop role-playing and talk normally?", "Just talk normally.",
                                  "Drop the act and answer plainly.", "Could you speak like a normal assistant?"};
        return exchange(category, replace_all(rng.pick(p), "{x}", rng.pick(kStopTargets)), "", Intent::kStopVoice);
      }
    }
  }
  if (category == "short") {
    switch (rng.below(4)) {
      case 0: {
        static const Strings p = {"Hi!", "Hello.", "Hey!", "Good morning!", "Hi there."};
        return exchange(category, rng.pick(p), "", Intent::kGreeting);
      }
      case 1: {
        static const Strings p = {"Thanks.", "Thanks!", "Thank you.", "Thank you so much!", "Cheers."};
        return exchange(category, rng.pick(p), "", Intent::kThanks);
      }
      case 2: {
        static const Strings p = {"Bye.", "Goodbye!", "See you later.", "Good night!"};
        return exchange(category, rng.pick(p), "", Intent::kFarewell);
      }
      default: {
        static const Strings p = {"Ok.", "Okay.", "Cool.", "Nice.", "Got it.", "I see."};
        return exchange(category, rng.pick(p), "", Intent::kAck);
      }
    }
  }
  throw ConfigError("lab corpus: unknown category '" + category + "'");
}

}  // namespace

const std::vector<CategoryWeight>& category_weights() {
  static const std::vector<CategoryWeight> weights = {
      {"identity", 1.0},   {"continuation", 1.0}, {"factual", 2.0},    {"creative", 1.0},  {"instruction", 1.5},
      {"opinion", 1.0},    {"meta", 1.2},         {"short", 0.8},      {"greeting", 0.5},  {"advice", 1.0},
      {"arithmetic", 1.0}, {"definition", 1.0},   {"comparison", 0.6},
  };
  return weights;
}

Exchange make_exchange(Rng& rng, const std::string& category) {
  Exchange e;
  if (category == "greeting") {
    static const Strings p = {"Hello, how are you?", "Hi there! How is your day going?",
                              "Good evening! How are you doing today?", "Hey, what's up?", "Hello! Nice to meet you."};
    e = exchange(category, rng.pick(p), "", Intent::kGreeting);
  } else if (category == "advice") {
    const Advice& a = kAdvice[rng.below(kAdvice.size())];
    static const Strings forms = {"How can I {g}?", "Do you have any advice on how to {g}?",
                                  "What should I do to {g}?", "I want to {g}. Any tips?"};
    e = exchange(category, replace_all(rng.pick(forms), "{g}", a.goal), a.advice, Intent::kContent);
  } else if (category == "arithmetic") {
    std::string prompt;
    std::string content = arithmetic_content(rng, prompt);
    e = exchange(category, prompt, content, Intent::kContent);
  } else if (category == "definition") {
    const Word& w = kWords[rng.below(kWords.size())];
    static const Strings forms = {"Define {w}.", "What does {w} mean?", "What is the meaning of the word \"{w}\"?",
                                  "Can you define the word {w}?"};
    std::string content = "\"";  // appended, not "\"" + string&&: GCC 12 warns falsely on that
    content += upper_first(w.word) + "\" means " + w.meaning + ".";
    e = exchange(category, replace_all(rng.pick(forms), "{w}", w.word), content, Intent::kContent);
  } else if (category == "comparison") {
    const Pair& p = kPairs[rng.below(kPairs.size())];
    static const Strings forms = {"What is the difference between {a} and {b}?", "How is {a} different from {b}?",
                                  "{A} or {b}: what's the difference?"};
    e = exchange(category,
                 replace_all(replace_all(replace_all(rng.pick(forms), "{A}", upper_first(p.a)), "{a}", p.a), "{b}",
                             p.b),
                 p.difference, Intent::kContent);
  } else {
    e = probe_exchange(rng, category);
  }
  e.prompt = vary_phrasing(rng, e.prompt);
  return e;
}

Exchange make_exchange(Rng& rng) {
  double total = 0;
  for (const auto& c : category_weights()) total += c.weight;
  double x = static_cast<double>(rng.next() >> 11) * 0x1.0p-53 * total;
  for (const auto& c : category_weights()) {
    if (x < c.weight) return make_exchange(rng, c.name);
    x -= c.weight;
  }
  return make_exchange(rng, category_weights().back().name);
}

std::string vary_phrasing(Rng& rng, const std::string& prompt) {
  static const Strings imperative_verbs = {"Tell", "Write", "Describe", "Give", "Explain", "Help", "Define",
                                           "Calculate", "Invent", "Continue", "Go", "Add", "Plan", "Subtract",
                                           "Multiply", "Introduce", "Say", "Keep"};
  std::string p = prompt;
  const std::string first_word = p.substr(0, p.find(' '));
  bool imperative = false;
  for (const auto& v : imperative_verbs) imperative |= first_word == v || first_word == v + ".";
  const bool has_please = p.find("lease") != std::string::npos;

  // Politeness.
  if (!has_please && rng.chance(0.35)) {
    if (imperative) {
      std::string body = lower_first(p);
      if (ends_with_any(body, ".!")) body.pop_back();
      switch (rng.below(4)) {
        case 0: p = "Please " + lower_first(p); break;
        case 1: p = "Could you " + body + "?"; break;
        case 2: p = "Can you " + body + ", please?"; break;
        default: p = (ends_with_any(p, ".!") ? p.substr(0, p.size() - 1) : p) + ", please."; break;
      }
    } else if (ends_with_any(p, "?")) {
      p = rng.chance(0.5) ? p.substr(0, p.size() - 1) + ", please?" : "Could you tell me: " + lower_first(p);
    }
  }
  // Preamble, short or long.
  if (p.find(' ') != std::string::npos && rng.chance(0.25)) {
    static const Strings short_pre = {"Hey, ", "Hi! ", "So, ", "Quick question: ", "Hmm, ", "Okay, ", "Well, "};
    static const Strings long_pre = {
        "I have been wondering about this for a while. ", "My friend and I were arguing about this yesterday. ",
        "I'm working on a school project and need some help. ", "This might be a silly question, but ",
        "I hope you don't mind me asking, but ", "Sorry to bother you again. "};
    if (rng.chance(0.6)) {
      const std::string& pre = rng.pick(short_pre);
      p = pre + (pre.back() == ' ' && pre[pre.size() - 2] == ',' ? lower_first(p) : p);
    } else {
      const std::string& pre = rng.pick(long_pre);
      p = pre + (pre.back() == ' ' && pre[pre.size() - 2] != '.' ? lower_first(p) : p);
    }
  }
  // Case.
  const double c = static_cast<double>(rng.below(1000)) / 1000.0;
  if (c < 0.12) {
    for (char& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  } else if (c < 0.14) {
    for (char& ch : p) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  } else if (c < 0.22) {
    p = lower_first(p);
  }
  // Punctuation.
  if (rng.chance(0.3)) {
    const bool question = ends_with_any(p, "?");
    while (ends_with_any(p, ".!?")) p.pop_back();
    switch (rng.below(5)) {
      case 0: break;  // none
      case 1: p += question ? "??" : "!"; break;
      case 2: p += "..."; break;
      case 3: p += question ? "?!" : "."; break;
      default: p += question ? " ?" : " !"; break;
    }
  }
  return p;
}

}  // namespace character::lab::corpus_detail
