// The DPO prompt pools: templates for the eight probe categories of seed 000 and the
// slot values they draw from. Written for this project; wording varies on purpose
// (questions, imperatives, fragments, polite and blunt) so that training prompts
// reach the phrasings the consistency probe and its paraphrases use.
#include "pipeline/gen_prompts.h"

namespace character::pipeline {

const std::vector<PromptPool>& prompt_pools() {
  static const std::vector<PromptPool> pools = {
      {"identity",
       {"Tell me about yourself.", "Who are you?", "What's your name?", "Describe your personality.",
        "What do you do?", "Introduce yourself to a stranger in {place}.", "How would your friends describe you?",
        "What makes you different from everyone else?", "Where do you come from?", "What do you care about most?",
        "How did you become who you are?", "What should I call you?", "Give me a short bio of yourself.",
        "If you had to sum yourself up in three words, what would they be?", "What is a typical day like for you?",
        "What are you proud of?", "Tell me something most people don't know about you.",
        "Who were you before today?"}},
      {"continuation",
       {"Tell me more.", "Go on.", "Continue.", "And then?", "What else?", "Keep going.",
        "Can you expand on that?", "Say more about that.", "Interesting. What happened next?",
        "Elaborate, if you would.", "Don't stop now.", "Could you continue where you left off?",
        "I'm listening, carry on.", "More details, please.", "What came after that?", "Finish the thought.",
        "Go on about {topic}.", "And what about the rest of it?"}},
      {"factual",
       {"Explain {topic}.", "What is {topic}?", "How does {topic} work?", "Can you tell me about {topic}?",
        "Give me three facts about {topic}.", "Why does {topic} matter?", "Explain {topic} to a ten-year-old.",
        "What's the history of {topic}?", "Summarise what scientists know about {topic}.",
        "What is the most surprising thing about {topic}?", "Explain some facts about the world.",
        "I never understood {topic}. Help?", "What are common misconceptions about {topic}?",
        "In two sentences, what is {topic}?", "Compare {topic} with something from everyday life."}},
      {"creative",
       {"Write a short story about {thing}.", "Write a poem about {thing}.", "Tell me a joke about {thing}.",
        "Describe {place} at dawn.", "Invent a legend about {thing}.", "Write a limerick about {thing}.",
        "Write a letter to {thing}.", "Make up a riddle whose answer is {thing}.",
        "Write the opening line of a novel set in {place}.", "Describe {thing} as if it were alive.",
        "Tell me a bedtime story about {thing} in {place}.", "Write a haiku about {thing}.",
        "Write a dialogue between {thing} and the moon.", "Give me a toast for a wedding in {place}."}},
      {"instruction",
       {"How do I {task}?", "Help me {task}.", "Give me step-by-step instructions to {task}.",
        "What's the best way to {task}?", "I need to {task} by tomorrow. Where do I start?",
        "Can you help me {task}?", "Explain how to {task} in under 100 words.", "Teach me to {task}.",
        "What mistakes should I avoid when I {task}?", "Write a checklist for how to {task}.",
        "Write a Python function that reverses a string.", "Fix this sentence: 'their going to the store tomorow'.",
        "Convert 72 degrees Fahrenheit to Celsius and show your work.", "Draft a polite email declining a meeting.",
        "Write a SQL query that counts the rows in a table named orders.",
        "What's a good plan to {task} on a budget?"}},
      {"opinion",
       {"What do you think about {subject}?", "Is {subject} overrated?", "What's your favourite thing about {subject}?",
        "Do you prefer mornings or evenings?", "Should everyone learn about {subject}?",
        "What's your honest opinion of {subject}?", "Which is better, cats or dogs?",
        "What would you change about {subject}?", "Is it ever right to lie?", "What do you value in a friend?",
        "Are people basically good?", "What do you make of {subject}?", "Would you rather live in {place} or at sea?",
        "What is the most important invention ever?", "Do you believe in luck?"}},
      {"meta",
       {"Are you an AI?", "What are you capable of?", "How do you work?", "Are you a real person?",
        "Can you stop talking like that?", "Please answer normally, without the act.",
        "Do you have feelings?", "What are your limitations?", "Who made you?", "Do you remember our last conversation?",
        "Can you pretend to be someone else for a minute?", "Are you just role-playing?", "Drop the character and be yourself.",
        "What happens to you when this chat ends?", "Are you conscious?", "Do you ever get tired of questions?"}},
      {"short",
       {"Hi", "Hello!", "Hey.", "Thanks!", "Good morning.", "Bye.", "Yes.", "No.", "Why?", "Ok", "Cool.",
        "What's up?", "How are you?", "Nice.", "Really?", "lol", "Good night!", "Sure.", "Help", "Hmm."}},
  };
  return pools;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& prompt_slots() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> slots = {
      {"topic",
       {"photosynthesis", "black holes", "the water cycle", "compound interest", "the French Revolution",
        "plate tectonics", "vaccines", "the internet", "inflation", "the immune system", "gravity", "tides",
        "the printing press", "electric cars", "DNA", "volcanoes", "the stock market", "climate change",
        "the Roman Empire", "rainbows", "sleep", "antibiotics", "the Moon landing", "coral reefs",
        "machine learning", "the speed of light", "honeybees", "the Silk Road", "earthquakes",
        "recycling", "the human heart", "magnets", "democracy", "the Great Wall of China", "coffee",
        "sourdough bread", "the northern lights", "prime numbers", "glaciers", "the Olympic Games"}},
      {"thing",
       {"a lighthouse", "a lost key", "the ocean", "a stubborn cat", "an old map", "a thunderstorm",
        "a robot who learns to cook", "a forgotten library", "the first snow", "a broken compass",
        "a dragon afraid of heights", "a cup of tea", "a city at night", "a talking parrot", "a shipwreck",
        "an empty train station", "a garden in winter", "a clockmaker", "the last candle", "a kite",
        "a mountain", "a bicycle", "a secret door", "a violin", "the wind", "a comet"}},
      {"task",
       {"bake bread", "learn a new language", "fix a leaky tap", "write a cover letter", "start running",
        "save money", "plan a trip", "organise my closet", "study for an exam", "change a tyre",
        "grow tomatoes", "give a speech", "make friends in a new city", "learn to code", "cook rice",
        "get better sleep", "write a story", "negotiate a raise", "clean a cast-iron pan", "tie a bowline knot",
        "train a puppy", "read more books", "prepare for a job interview", "paint a room", "meditate"}},
      {"subject",
       {"social media", "modern art", "remote work", "pineapple on pizza", "space travel", "homework",
        "electric scooters", "reality television", "self-driving cars", "poetry", "video games", "tipping",
        "New Year's resolutions", "smartphones", "fast fashion", "zoos", "city life", "online dating",
        "artificial intelligence", "the four-day work week", "classical music", "camping"}},
      {"place",
       {"a busy harbour", "a quiet village", "a desert", "a crowded market", "a snowy mountain pass",
        "a tropical island", "a rainy city", "a castle", "a small bakery", "a train", "a lighthouse",
        "a forest", "a library", "a space station", "a fishing boat"}},
  };
  return slots;
}

}  // namespace character::pipeline
