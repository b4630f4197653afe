//! The word list new passwords are drawn from.
//!
//! It holds 1024 common French words, so each word drawn uniformly at random
//! carries exactly 10 bits of entropy.
//!
//! Rules the list follows:
//!
//! - lowercase ASCII letters only: accents are removed in the spelling
//!   ("foret", not "forêt"), so that any keyboard types them;
//! - 4 to 8 letters per word;
//! - no two words are equal (a word may be a prefix of another: that is not
//!   required and is not checked);
//! - nothing offensive, no names of people, and no words that look alike once
//!   typed; in particular there are no plurals at all, so no pair of words
//!   differs only by a final 's';
//! - everyday nouns, adjectives and verbs in the infinitive that any French
//!   speaker knows (nature, food, animals, objects, colours, school, weather,
//!   music, ...).
//!
//! The list was written for this project; it is not copied from any
//! dictionary file.

/// The 1024 words new passwords are drawn from (see the module documentation
/// for the rules they follow).
pub const WORDS: [&str; 1024] = [
    "arbre", "foret", "riviere", "fleuve", "montagne", "colline", "vallee", "prairie", "champ", "jardin", "fleur",
    "feuille", "branche", "racine", "graine", "herbe", "mousse", "rocher", "caillou", "sable", "plage", "falaise",
    "ocean", "vague", "maree", "ruisseau", "source", "cascade", "glacier", "volcan", "desert", "oasis", "dune",
    "savane", "jungle", "marais", "etang", "verger", "sentier", "chemin", "route", "pont", "ravin", "grotte",
    "caverne", "baie", "golfe", "rivage", "horizon", "ciel", "nuage", "soleil", "lune", "etoile", "comete", "planete",
    "univers", "galaxie", "orage", "pluie", "neige", "grele", "brume", "vent", "tempete", "eclair", "tonnerre",
    "rosee", "givre", "verglas", "saison", "automne", "hiver", "climat", "chaleur", "tulipe", "lilas", "muguet",
    "lavande", "pivoine", "bleuet", "orchidee", "cactus", "bambou", "fougere", "lierre", "chene", "sapin", "hetre",
    "bouleau", "saule", "erable", "tilleul", "palmier", "cedre", "frene", "orme", "noyer", "pommier", "laurier",
    "houx", "bruyere", "trefle", "roseau", "menthe", "thym", "basilic", "persil", "romarin", "sauge", "pain", "beurre",
    "fromage", "lait", "yaourt", "creme", "oeuf", "farine", "sucre", "miel", "gateau", "tarte", "biscuit", "crepe",
    "gaufre", "brioche", "baguette", "tartine", "soupe", "salade", "tomate", "carotte", "poireau", "oignon", "chou",
    "navet", "radis", "potiron", "haricot", "lentille", "pomme", "poire", "cerise", "fraise", "myrtille", "banane",
    "orange", "citron", "ananas", "mangue", "melon", "pasteque", "raisin", "prune", "abricot", "peche", "figue",
    "datte", "kiwi", "noix", "noisette", "amande", "olive", "avocat", "papaye", "fenouil", "cassis", "mure", "viande",
    "poulet", "jambon", "saucisse", "poisson", "saumon", "sardine", "crevette", "huitre", "crabe", "homard",
    "chocolat", "bonbon", "glace", "sorbet", "caramel", "vanille", "poivre", "moutarde", "vinaigre", "huile", "epice",
    "sauce", "omelette", "quiche", "frite", "puree", "gratin", "fondue", "raclette", "macaron", "meringue", "nougat",
    "guimauve", "sirop", "cafe", "tisane", "limonade", "boisson", "repas", "diner", "dejeuner", "gouter", "menu",
    "recette", "cuisine", "chat", "chien", "lapin", "souris", "cheval", "mouton", "chevre", "canard", "taureau",
    "veau", "agneau", "poussin", "lion", "tigre", "ours", "loup", "renard", "cerf", "biche", "sanglier", "lievre",
    "herisson", "ecureuil", "castor", "loutre", "taupe", "marmotte", "elephant", "girafe", "zebre", "singe", "gorille",
    "panda", "koala", "tortue", "serpent", "lezard", "crapaud", "baleine", "dauphin", "requin", "phoque", "pingouin",
    "pieuvre", "meduse", "oursin", "escargot", "limace", "papillon", "abeille", "fourmi", "guepe", "mouche", "criquet",
    "grillon", "cigale", "araignee", "chenille", "aigle", "faucon", "hibou", "chouette", "corbeau", "pigeon",
    "moineau", "merle", "mesange", "cygne", "heron", "cigogne", "flamant", "paon", "autruche", "mouette", "goeland",
    "canari", "perruche", "poney", "jument", "bison", "lama", "renne", "furet", "belette", "lynx", "jaguar",
    "panthere", "guepard", "puma", "truite", "corail", "eponge", "maison", "porte", "fenetre", "toit", "plafond",
    "escalier", "cave", "grenier", "garage", "salon", "chambre", "couloir", "balcon", "terrasse", "cheminee", "table",
    "chaise", "fauteuil", "canape", "armoire", "tiroir", "etagere", "oreiller", "couette", "tapis", "rideau", "lampe",
    "bougie", "miroir", "horloge", "reveil", "tableau", "cadre", "vase", "assiette", "verre", "tasse", "cuillere",
    "couteau", "poele", "four", "frigo", "placard", "evier", "robinet", "douche", "savon", "brosse", "peigne", "balai",
    "seau", "poubelle", "panier", "valise", "cartable", "trousse", "stylo", "crayon", "gomme", "regle", "ciseau",
    "colle", "cahier", "classeur", "feutre", "craie", "bureau", "livre", "carnet", "agenda", "papier", "timbre",
    "lettre", "carte", "affiche", "journal", "album", "photo", "image", "dessin", "peinture", "pinceau", "palette",
    "toile", "statue", "musee", "chemise", "pantalon", "jupe", "robe", "manteau", "veste", "blouson", "pull", "gilet",
    "echarpe", "bonnet", "chapeau", "gant", "chausson", "botte", "sandale", "ceinture", "cravate", "costume",
    "tablier", "pyjama", "maillot", "collier", "bracelet", "bague", "montre", "lunette", "mouchoir", "poche", "bouton",
    "manche", "capuche", "tissu", "coton", "laine", "soie", "cuir", "rouge", "bleu", "vert", "jaune", "violet",
    "blanc", "noir", "gris", "brun", "marron", "beige", "dore", "indigo", "pourpre", "azur", "ivoire", "emeraude",
    "ecarlate", "ecole", "classe", "eleve", "maitre", "cantine", "cour", "preau", "gymnase", "lecon", "devoir",
    "exercice", "examen", "diplome", "bulletin", "note", "dictee", "calcul", "addition", "probleme", "lecture",
    "ecriture", "histoire", "science", "musique", "chanson", "poeme", "conte", "fable", "roman", "chapitre", "page",
    "phrase", "alphabet", "chiffre", "nombre", "virgule", "point", "question", "reponse", "rentree", "semaine",
    "journee", "matin", "midi", "soir", "minuit", "heure", "minute", "seconde", "mois", "annee", "siecle", "date",
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "janvier", "fevrier", "mars", "avril",
    "juin", "juillet", "aout", "octobre", "novembre", "decembre", "piano", "guitare", "violon", "flute", "tambour",
    "harpe", "orgue", "triangle", "hautbois", "rythme", "chorale", "concert", "opera", "valse", "tango", "danse",
    "ballet", "disque", "radio", "refrain", "accord", "solfege", "silence", "gamme", "voiture", "camion", "autobus",
    "velo", "moto", "train", "metro", "avion", "bateau", "navire", "voilier", "barque", "fusee", "roue", "volant",
    "moteur", "pneu", "guidon", "selle", "pedale", "frein", "phare", "gare", "quai", "station", "port", "aeroport",
    "piste", "billet", "voyage", "boussole", "radeau", "tracteur", "ville", "village", "avenue", "place", "boutique",
    "magasin", "epicerie", "mairie", "poste", "banque", "hopital", "chateau", "palais", "tour", "parc", "fontaine",
    "banc", "trottoir", "quartier", "immeuble", "usine", "ferme", "moulin", "grange", "cabane", "chalet", "tente",
    "hotel", "cinema", "theatre", "stade", "piscine", "cirque", "fete", "manger", "boire", "dormir", "courir",
    "marcher", "sauter", "nager", "chanter", "lire", "ecrire", "peindre", "compter", "parler", "ecouter", "regarder",
    "voir", "entendre", "sentir", "toucher", "penser", "rire", "sourire", "aimer", "aider", "donner", "prendre",
    "porter", "ouvrir", "fermer", "tourner", "monter", "entrer", "sortir", "partir", "arriver", "venir", "tenir",
    "trouver", "chercher", "laver", "ranger", "cuire", "couper", "plier", "planter", "arroser", "cueillir", "semer",
    "recolter", "visiter", "grimper", "rouler", "voler", "glisser", "patiner", "lancer", "pousser", "creuser",
    "bricoler", "reparer", "coudre", "tricoter", "siffler", "saluer", "grandir", "finir", "choisir", "bondir",
    "fleurir", "mesurer", "peser", "savoir", "chauffer", "souffler", "respirer", "decorer", "inventer", "imaginer",
    "raconter", "payer", "acheter", "vendre", "offrir", "partager", "garder", "cocher", "signer", "trier", "gagner",
    "essayer", "explorer", "promener", "sculpter", "colorier", "ajouter", "inviter", "nettoyer", "balayer", "sonner",
    "grand", "petit", "long", "court", "haut", "mince", "leger", "lourd", "doux", "chaud", "froid", "propre", "neuf",
    "jeune", "nouveau", "ancien", "beau", "joli", "calme", "rapide", "lent", "fort", "facile", "simple", "clair",
    "sombre", "joyeux", "heureux", "gentil", "poli", "sage", "drole", "curieux", "malin", "habile", "agile", "souple",
    "solide", "rare", "plein", "vide", "rond", "carre", "plat", "sauvage", "brave", "agreable", "juste", "vrai",
    "proche", "voisin", "famille", "enfant", "bebe", "frere", "soeur", "cousin", "oncle", "tante", "parent", "copain",
    "equipe", "groupe", "foule", "peuple", "pays", "region", "nation", "monde", "terre", "globe", "drapeau",
    "capitale", "sommet", "pente", "plaine", "plateau", "vallon", "cime", "crete", "massif", "idee", "projet", "reve",
    "espoir", "joie", "bonheur", "plaisir", "amitie", "courage", "patience", "liberte", "paix", "sagesse", "talent",
    "chance", "surprise", "cadeau", "secret", "mystere", "aventure", "souvenir", "legende", "mythe", "tresor", "magie",
    "lutin", "dragon", "licorne", "geant", "prince", "reine", "royaume", "couronne", "ancre", "voile", "rame",
    "marteau", "clou", "scie", "pince", "clef", "pelle", "rateau", "arrosoir", "brouette", "echelle", "corde",
    "ficelle", "noeud", "cadenas", "serrure", "verrou", "poignee", "aimant", "machine", "outil", "atelier", "ruban",
    "aiguille", "epingle", "metre", "compas", "clavier", "ecran", "tablette", "courriel", "fichier", "dossier",
    "reseau", "cable", "prise", "batterie", "pile", "camera", "appareil", "antenne", "signal", "message", "adresse",
    "code", "video", "jouet", "ballon", "balle", "poupee", "peluche", "domino", "toupie", "toboggan", "manege",
    "marelle", "judo", "rugby", "natation", "course", "marathon", "sport", "filet", "raquette", "arbitre", "champion",
    "medaille", "trophee", "coupe", "terrain", "pelouse", "gazon", "plongee", "escalade", "main", "pied", "tete",
    "epaule", "genou", "coude", "doigt", "ongle", "cheveu", "oreille", "bouche", "dent", "langue", "joue", "front",
    "menton", "jambe", "cheville", "poignet", "talon", "coeur", "sourcil", "boucher", "facteur", "pompier", "medecin",
    "dentiste", "pilote", "marin", "pecheur", "fermier", "potier", "macon", "plombier", "serveur", "artiste", "acteur",
    "musicien", "auteur", "poete", "savant", "juge", "berger", "meunier", "forgeron", "tailleur", "coiffeur",
    "libraire", "gardien", "docteur", "cercle", "losange", "ovale", "cube", "sphere", "pyramide", "ligne", "courbe",
    "angle", "droite", "rayon", "surface", "volume", "somme", "moitie", "tiers", "quart", "zero", "unite", "million",
    "numero", "deux", "trois", "quatre", "cinq", "sept", "huit", "douze", "quinze", "vingt", "trente", "cent", "mille",
    "nord", "ouest", "arctique", "canal", "bouee", "nappe", "theiere", "passoire", "louche", "rouleau", "bocal",
    "boite", "carton", "bouchon", "carafe", "gobelet", "paille", "grille", "averse", "rafale", "ouragan", "tornade",
    "canicule", "flocon", "glacon", "eclipse", "metal", "cuivre", "bronze", "argent", "acier", "brique", "beton",
    "marbre", "granit", "ardoise", "tuile", "argile", "cristal", "perle", "diamant", "rubis", "saphir", "opale",
];

#[cfg(test)]
mod tests {
    use super::WORDS;
    use std::collections::HashSet;

    #[test]
    fn the_list_follows_its_rules() {
        assert_eq!(WORDS.len(), 1024);
        let mut seen = HashSet::new();
        for word in WORDS {
            assert!((4..=8).contains(&word.len()), "bad length: {word}");
            assert!(word.bytes().all(|b| b.is_ascii_lowercase()), "bad letter in: {word}");
            assert!(seen.insert(word), "duplicate: {word}");
        }
        for word in WORDS {
            let plural = format!("{word}s");
            assert!(!seen.contains(plural.as_str()), "plural pair: {word} / {plural}");
        }
    }
}
