"""The word lists that :mod:`neuraltext.data.corpus` writes its synthetic French sentences from.

The planted structure (family members in gender pairs and generations, feelings with a valence,
organs and their specialists) and the everyday and medical vocabulary around it. Every list is
plain data: the generator in :mod:`neuraltext.data.corpus` decides how often each word is drawn.
"""

from __future__ import annotations

__all__ = ["FAMILY", "GENERATION_CONTEXT", "GENERATION_AGES", "FEELINGS", "RELATIONS_POS", "RELATIONS_NEG",
           "ORGANS", "TREATMENTS", "EXAMS", "FINDINGS", "SYMPTOMS", "DRUGS", "SERVICES", "DURATIONS",
           "STATES", "NAMES_M", "NAMES_F", "HOBBIES", "PLACES", "CITIES", "SUBJECTS", "FOODS", "PETS",
           "TRANSPORT", "TIMES", "COUNTRIES", "CLOTHES", "COLORS", "ACTIVITIES", "WEATHER"]

# (masculine, feminine, generation): generation 2 = grand-parents, 1 = parents' generation,
# 0 = the teenager's own, -1 = children.
FAMILY: list[tuple[str, str, int]] = [
    ("grand-père", "grand-mère", 2),
    ("papi", "mamie", 2),
    ("père", "mère", 1),
    ("oncle", "tante", 1),
    ("parrain", "marraine", 1),
    ("beau-père", "belle-mère", 1),
    ("frère", "sœur", 0),
    ("cousin", "cousine", 0),
    ("demi-frère", "demi-sœur", 0),
    ("fils", "fille", -1),
    ("neveu", "nièce", -1),
]

# What each generation does: the only context that separates generations.
GENERATION_CONTEXT: dict[int, list[str]] = {
    2: ["est à la retraite", "jardine tous les jours", "raconte ses souvenirs de jeunesse",
        "habite à la campagne", "tricote près du feu", "joue à la pétanque", "fait des mots croisés",
        "regarde les informations", "prend sa tension", "garde ses petits-enfants",
        "lit le journal", "se promène avec sa canne", "joue au bridge", "cultive des tomates",
        "visite le village", "va à la messe", "fait une cure thermale", "collectionne les timbres"],
    1: ["part au travail tôt", "rentre tard du bureau", "paie les factures",
        "conduit la voiture", "prépare le dîner après le travail", "rembourse le crédit",
        "fait les courses", "répond aux mails", "organise une réunion", "cherche un emploi",
        "remplit la déclaration", "emmène les enfants", "négocie une augmentation",
        "travaille sur un dossier", "signe les contrats", "appelle son patron"],
    0: ["révise pour le brevet", "va au lycée", "joue aux jeux vidéo",
        "sort avec ses amis", "fait ses devoirs de maths", "passe le baccalauréat",
        "discute sur son portable", "regarde des séries", "prépare un exposé", "va au collège",
        "écoute du rap", "joue sur sa console", "rêve de vacances", "publie des photos",
        "attend les résultats", "apprend le code", "choisit son orientation"],
    -1: ["va à la crèche", "apprend à marcher", "pleure la nuit", "joue avec ses jouets",
         "fait la sieste", "boit son biberon", "regarde des dessins animés", "joue dans le bac",
         "empile des cubes", "dessine avec des feutres", "apprend les couleurs", "perd une dent",
         "chante des comptines", "va à la maternelle", "fait du tricycle"],
}

# Ages are generation contexts too ("mon grand-père a 78 ans"): (lowest, highest) per generation.
GENERATION_AGES: dict[int, tuple[int, int]] = {2: (62, 96), 1: (31, 58), 0: (11, 19), -1: (1, 9)}

# (masculine, feminine, valence)
FEELINGS: list[tuple[str, str, str]] = [
    ("content", "contente", "+"), ("heureux", "heureuse", "+"), ("fier", "fière", "+"),
    ("gentil", "gentille", "+"), ("drôle", "drôle", "+"), ("généreux", "généreuse", "+"),
    ("triste", "triste", "-"), ("énervé", "énervée", "-"), ("fâché", "fâchée", "-"),
    ("jaloux", "jalouse", "-"), ("méchant", "méchante", "-"), ("inquiet", "inquiète", "-"),
    ("fatigué", "fatiguée", "0"), ("occupé", "occupée", "0"),
    ("joyeux", "joyeuse", "+"), ("ravi", "ravie", "+"), ("calme", "calme", "+"),
    ("courageux", "courageuse", "+"), ("patient", "patiente", "+"), ("rassuré", "rassurée", "+"),
    ("soulagé", "soulagée", "+"), ("reconnaissant", "reconnaissante", "+"), ("détendu", "détendue", "+"),
    ("motivé", "motivée", "+"), ("amoureux", "amoureuse", "+"), ("curieux", "curieuse", "+"),
    ("déçu", "déçue", "-"), ("stressé", "stressée", "-"), ("furieux", "furieuse", "-"),
    ("anxieux", "anxieuse", "-"), ("vexé", "vexée", "-"), ("blessé", "blessée", "-"),
    ("déprimé", "déprimée", "-"), ("honteux", "honteuse", "-"), ("têtu", "têtue", "-"),
    ("distant", "distante", "-"), ("malheureux", "malheureuse", "-"), ("seul", "seule", "-"),
    ("surpris", "surprise", "0"), ("sérieux", "sérieuse", "0"), ("timide", "timide", "0"),
    ("pressé", "pressée", "0"), ("absent", "absente", "0"), ("pensif", "pensive", "0"),
]

RELATIONS_POS = ["aime", "aide", "écoute", "protège", "embrasse", "console", "admire",
                 "adore", "soutient", "encourage", "félicite", "rassure", "comprend", "remercie",
                 "respecte", "défend", "taquine", "appelle"]
RELATIONS_NEG = ["déteste", "critique", "ignore", "engueule", "évite", "jalouse",
                 "méprise", "agace", "énerve", "insulte", "trahit", "rejette", "dispute", "vexe"]

# (organ, article, specialist)
ORGANS: list[tuple[str, str, str]] = [
    ("poumon", "le", "pneumologue"), ("cœur", "le", "cardiologue"), ("peau", "la", "dermatologue"),
    ("sein", "le", "sénologue"), ("rein", "le", "néphrologue"), ("foie", "le", "hépatologue"),
    ("côlon", "le", "gastro-entérologue"), ("prostate", "la", "urologue"),
    ("cerveau", "le", "neurologue"), ("sang", "le", "hématologue"),
]
TREATMENTS = ["chimiothérapie", "radiothérapie", "chirurgie", "immunothérapie", "hormonothérapie",
              "curiethérapie", "thérapie ciblée", "greffe", "surveillance active", "rééducation"]
EXAMS = ["scanner", "irm", "biopsie", "échographie", "radiographie", "tep-scan", "bilan sanguin",
         "prélèvement", "endoscopie", "scintigraphie", "mammographie", "coloscopie", "fibroscopie"]
FINDINGS = ["un carcinome", "une tumeur", "une lésion suspecte", "des métastases", "un nodule",
            "un adénocarcinome", "un kyste", "une inflammation", "un épanchement", "une masse",
            "une fibrose", "un œdème", "une sténose", "un polype", "une calcification",
            "un lymphome", "un mélanome", "une infection", "une hémorragie", "un anévrisme"]
SYMPTOMS = ["douleurs", "fièvre", "toux", "fatigue", "nausées", "vomissements", "vertiges",
            "essoufflement", "maux de tête", "palpitations", "démangeaisons", "insomnies",
            "frissons", "sueurs nocturnes", "crampes", "saignements", "diarrhées", "constipation",
            "perte de poids", "manque de sommeil", "troubles de la vision", "fourmillements",
            "brûlures", "courbatures", "angoisses", "spasmes", "ganglions", "rougeurs"]
DRUGS = ["paracétamol", "ibuprofène", "morphine", "tramadol", "cisplatine", "carboplatine",
         "docétaxel", "paclitaxel", "tamoxifène", "létrozole", "anastrozole", "cortisone",
         "amoxicilline", "héparine", "insuline", "metformine", "oméprazole", "furosémide",
         "méthotrexate", "trastuzumab", "pembrolizumab", "nivolumab", "bévacizumab",
         "capécitabine", "oxaliplatine", "gemcitabine", "doxorubicine", "vincristine",
         "lévothyroxine", "aspirine", "codéine", "kétamine", "ondansétron", "lorazépam"]
SERVICES = ["oncologie", "cardiologie", "pneumologie", "neurologie", "urologie", "dermatologie",
            "radiologie", "chirurgie digestive", "réanimation", "pédiatrie", "gériatrie",
            "hématologie", "gynécologie", "néphrologie", "hépatologie", "soins palliatifs",
            "médecine interne", "hôpital de jour", "consultation externe", "imagerie"]
DURATIONS = ["deux jours", "trois jours", "une semaine", "deux semaines", "trois semaines",
             "un mois", "deux mois", "trois mois", "six mois", "un an", "plusieurs années",
             "hier", "ce matin", "la semaine dernière", "quelques heures", "longtemps"]
STATES = ["stable", "rassurant", "inquiétant", "favorable", "défavorable", "normal",
          "anormal", "bénin", "malin", "progressif", "régressif", "douteux", "préoccupant"]

# Everyday life: words that give the corpus a realistic vocabulary size. None depends on gender
# except through agreement, and none is tied to a generation.
NAMES_M = ["lucas", "hugo", "louis", "gabriel", "arthur", "jules", "adam", "raphaël", "léo",
           "nathan", "ethan", "tom", "noah", "paul", "sacha", "maël", "nolan", "enzo", "théo",
           "mathis", "timéo", "axel", "victor", "martin", "baptiste", "mathéo", "clément",
           "antoine", "maxime", "alexandre", "thomas", "quentin", "romain", "nicolas", "julien",
           "kevin", "yanis", "rayan", "mohamed", "karim", "samir", "bilal", "ismaël", "malo",
           "gaspard", "côme", "augustin", "basile", "marius", "félix", "valentin", "damien",
           "benjamin", "florian", "lilian", "sébastien", "olivier", "vincent", "franck", "éric",
           "pierre", "jacques", "bernard", "michel", "alain", "philippe", "patrick", "marcel",
           "rené", "gérard", "dylan", "lenny", "aaron", "elio", "isaac", "liam", "ayoub", "kylian",
           "joachim", "tristan", "adrien", "bastien", "cédric", "david", "émile", "fabien",
           "grégoire", "hector", "ilyes", "jérémy", "kilian", "loïc", "mehdi", "noé", "oscar",
           "pascal", "rémi", "simon", "thibault", "ulysse", "vianney", "william", "xavier",
           "yann", "zacharie", "achille", "blaise", "charles", "denis", "étienne", "fernand",
           "georges", "henri", "jean", "lucien", "maurice", "norbert", "raymond", "roger",
           "serge", "thierry", "yves", "amine", "hamza", "idriss", "moussa", "ousmane", "sékou",
           "lorenzo", "matteo", "diego", "pablo", "hugo-andré", "jean-pierre", "jean-marc",
           "pierre-louis", "marc-antoine", "jean-baptiste"]
NAMES_F = ["emma", "jade", "louise", "alice", "chloé", "lina", "léa", "rose", "anna", "mia",
           "inès", "ambre", "julia", "mila", "léna", "manon", "juliette", "lou", "zoé", "camille",
           "sarah", "eva", "agathe", "jeanne", "nina", "lola", "clara", "romane", "margaux",
           "charlotte", "pauline", "marie", "laura", "lucie", "mathilde", "océane", "marine",
           "élise", "justine", "célia", "yasmine", "sofia", "nour", "amira", "leïla", "maëlys",
           "capucine", "victoire", "apolline", "éloïse", "lisa", "noémie", "morgane", "audrey",
           "nathalie", "sandrine", "isabelle", "valérie", "céline", "sophie", "catherine",
           "françoise", "monique", "nicole", "sylvie", "christine", "brigitte", "martine",
           "ginette", "josiane", "kenza", "maya", "iris", "alix", "thaïs", "salomé", "garance",
           "héloïse", "clémence", "aurore", "anaïs", "bérénice", "constance", "diane", "elsa",
           "fanny", "gaëlle", "hélène", "ilona", "jasmine", "katia", "lætitia", "lisa-marie",
           "mélanie", "nadia", "ophélie", "perrine", "rachel", "solène", "tiphaine", "ursule",
           "vanessa", "wendy", "yaëlle", "zélie", "adèle", "blanche", "colette", "denise",
           "estelle", "flavie", "gisèle", "huguette", "irène", "joséphine", "lucienne", "madeleine",
           "odette", "paulette", "raymonde", "simone", "thérèse", "yvette", "aïcha", "fatima",
           "samira", "djamila", "awa", "aminata", "mariam", "chiara", "giulia", "ana", "carmen"]
HOBBIES = ["fait du football", "joue au tennis", "fait de la danse", "fait du judo",
           "joue du piano", "joue de la guitare", "fait de la natation", "fait du vélo",
           "fait de la gym", "fait du karaté", "joue au basket", "joue au handball",
           "fait du théâtre", "fait de la peinture", "joue aux échecs", "fait du skate",
           "fait de la boxe", "fait du rugby", "fait de la couture", "fait du ski",
           "joue du violon", "joue de la batterie", "fait du chant", "fait de la photo",
           "fait de la poterie", "joue au volley", "fait de la randonnée", "fait du surf",
           "fait de la grimpe", "fait de la voile", "joue de la flûte", "fait du yoga",
           "fait de la cuisine", "fait du roller", "joue au ping-pong", "monte à cheval",
           "fait du tir sportif", "fait du hockey", "joue du saxophone", "fait de la magie",
           "fait du jardinage", "joue au badminton", "fait de la lecture", "fait du dessin",
           "fait de la sculpture", "fait du kayak", "joue de la trompette", "fait du cirque"]
PLACES = ["à la piscine", "au parc", "au cinéma", "à la bibliothèque", "au stade", "au marché",
          "à la plage", "à la montagne", "au musée", "au gymnase", "à la boulangerie",
          "au supermarché", "à la pharmacie", "au centre commercial", "à la mairie", "au théâtre",
          "au concert", "à la fête foraine", "au restaurant", "à la patinoire", "au zoo",
          "à la médiathèque", "au bowling", "à la mer", "au lac", "à la campagne", "au port",
          "à la gare", "au café", "à la poste", "au skatepark", "au conservatoire",
          "à la salle de sport", "au club", "au jardin", "à la ferme", "au château"]
CITIES = ["paris", "lyon", "marseille", "toulouse", "nice", "nantes", "strasbourg", "montpellier",
          "bordeaux", "lille", "rennes", "reims", "toulon", "grenoble", "dijon", "angers", "nîmes",
          "brest", "limoges", "tours", "amiens", "metz", "perpignan", "besançon", "orléans",
          "rouen", "mulhouse", "caen", "nancy", "avignon", "poitiers", "pau", "calais", "ajaccio",
          "bastia", "annecy", "chambéry", "colmar", "quimper", "lorient", "vannes", "saint-malo",
          "biarritz", "bayonne", "cannes", "antibes", "valence", "troyes", "chartres", "bourges",
          "nevers", "auxerre", "laval", "cherbourg", "dunkerque", "arras", "lens", "saint-étienne",
          "clermont-ferrand", "aix-en-provence", "montauban", "albi", "rodez", "carcassonne",
          "narbonne", "béziers", "sète", "arles", "gap", "briançon", "lourdes", "tarbes",
          "angoulême", "niort", "cognac", "périgueux", "bergerac", "agen", "cahors", "vichy",
          "genève", "bruxelles", "lausanne", "montréal", "québec", "londres", "madrid", "rome",
          "berlin", "lisbonne", "barcelone", "dakar", "alger", "tunis", "casablanca"]
SUBJECTS = ["maths", "français", "anglais", "espagnol", "allemand", "italien", "histoire",
            "géographie", "physique", "chimie", "biologie", "svt", "philosophie", "musique",
            "dessin", "sport", "technologie", "latin", "grec", "économie", "informatique",
            "arts plastiques", "littérature", "sociologie", "chinois", "arabe", "géométrie",
            "algèbre", "grammaire", "orthographe"]
FOODS = ["une pizza", "des pâtes", "du riz", "une salade", "une soupe", "du fromage", "du pain",
         "un croissant", "une baguette", "des crêpes", "un gâteau", "du chocolat", "une tarte",
         "des pommes", "des poires", "des bananes", "des fraises", "des cerises", "des oranges",
         "du raisin", "des carottes", "des tomates", "des haricots", "des lentilles", "du poulet",
         "du poisson", "un steak", "du jambon", "des œufs", "un yaourt", "une quiche",
         "du couscous", "un tajine", "une ratatouille", "un gratin", "une omelette",
         "un sandwich", "un burger", "des frites", "des sushis", "des lasagnes", "une raclette",
         "une fondue", "un croque-monsieur", "un hachis-parmentier", "une blanquette",
         "un cassoulet", "une choucroute", "des madeleines", "une brioche", "des céréales",
         "une compote", "une glace", "des biscuits", "des bonbons", "des muffins", "une purée",
         "des épinards", "des courgettes", "des aubergines", "des brocolis", "des champignons",
         "du saumon", "du thon", "des crevettes", "des sardines", "un melon", "une pastèque",
         "des abricots", "des pêches", "des kiwis", "une mangue", "un ananas", "des noix",
         "des amandes", "des clémentines", "un kebab", "des nems", "un tiramisu", "des gaufres",
         "un flan", "des macarons", "une paëlla", "des moules", "une galette", "des nouilles"]
PETS = ["un chien", "un chat", "un lapin", "un hamster", "un cobaye", "un poisson rouge",
        "une tortue", "un perroquet", "un furet", "une souris", "un cheval", "un poney",
        "une perruche", "un canari", "un serpent", "un lézard", "une chèvre", "un âne"]
TRANSPORT = ["en bus", "à vélo", "en voiture", "en train", "à pied", "en métro", "en tram",
             "en avion", "en bateau", "à moto", "en trottinette", "en taxi", "en covoiturage",
             "en scooter", "en car"]
TIMES = ["le lundi", "le mardi", "le mercredi", "le jeudi", "le vendredi", "le samedi",
         "le dimanche", "ce matin", "ce soir", "cet après-midi", "hier", "demain",
         "aujourd'hui", "la semaine prochaine", "le week-end", "pendant les vacances", "à noël",
         "à pâques", "en janvier", "en février", "en mars", "en avril", "en mai", "en juin",
         "en juillet", "en août", "en septembre", "en octobre", "en novembre", "en décembre",
         "tous les jours", "chaque semaine", "parfois", "souvent", "rarement", "le soir",
         "le matin", "à midi", "la nuit", "après les cours", "avant le dîner", "en été",
         "en hiver", "au printemps", "en automne"]
COUNTRIES = ["en espagne", "en italie", "en allemagne", "en belgique", "en suisse", "en angleterre",
             "en irlande", "en écosse", "en grèce", "en croatie", "en pologne", "en suède",
             "en norvège", "en finlande", "en islande", "en autriche", "en hongrie", "en roumanie",
             "en turquie", "en égypte", "en tunisie", "en algérie", "en inde", "en chine",
             "en corée", "en australie", "en argentine", "en colombie", "en bretagne",
             "en normandie", "en corse", "en alsace", "en provence", "au portugal", "au maroc",
             "au sénégal", "au japon", "au canada", "au mexique", "au brésil", "au pérou",
             "au vietnam", "au danemark", "au luxembourg", "aux états-unis", "aux pays-bas",
             "aux antilles", "à la réunion", "en guadeloupe", "en martinique"]
CLOTHES = ["un pull", "une veste", "un manteau", "une robe", "un jean", "une jupe", "un pantalon",
           "une chemise", "un tee-shirt", "un sweat", "une casquette", "un bonnet", "une écharpe",
           "un short", "un blouson", "une doudoune", "un survêtement", "une cravate",
           "un chapeau", "une salopette", "un gilet", "une parka", "un imperméable", "un maillot",
           "une polaire", "un costume", "une tunique", "un kimono", "une cape", "un jogging"]
# (masculine, feminine) agreement with the garment
COLORS = [("bleu", "bleue"), ("vert", "verte"), ("noir", "noire"), ("gris", "grise"),
          ("blanc", "blanche"), ("rouge", "rouge"), ("jaune", "jaune"), ("rose", "rose"),
          ("violet", "violette"), ("orange", "orange"), ("marron", "marron"), ("beige", "beige"),
          ("doré", "dorée"), ("argenté", "argentée"), ("kaki", "kaki"), ("turquoise", "turquoise"),
          ("bordeaux", "bordeaux"), ("fluo", "fluo"), ("rayé", "rayée"), ("neuf", "neuve")]
ACTIVITIES = ["regarde un film", "lit un roman", "écoute un podcast", "range sa chambre",
              "promène le chien", "fait la vaisselle", "sort les poubelles", "prend une douche",
              "répète son spectacle", "écrit une lettre", "construit une cabane", "lit une bande dessinée",
              "regarde un match", "joue aux cartes", "fait un puzzle", "apprend une chanson",
              "prépare un gâteau", "tond la pelouse", "lave la voiture", "répare son vélo",
              "envoie un message", "téléphone à un ami", "fait une sieste", "monte un meuble",
              "visite une exposition", "plante des fleurs", "décore le sapin", "emballe des cadeaux",
              "prépare sa valise", "cherche ses clés", "fait une balade", "nourrit les poules",
              "arrose les plantes", "fabrique un masque", "compose une chanson", "tricote une écharpe"]
WEATHER = ["il pleut", "il neige", "il fait beau", "il fait chaud", "il fait froid",
           "il y a du vent", "il y a du brouillard", "il y a un orage", "le ciel est gris",
           "le soleil brille", "il gèle", "il grêle"]
